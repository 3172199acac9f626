// Command cilium-loader loads a BPF ELF object the way a bpf2go-generated
// program does: it parses the object with ebpf.LoadCollectionSpec and calls
// CollectionSpec.LoadAndAssign on a struct that requests the same objects the
// generated XObjects struct would request.
//
// Usage: cilium-loader OBJECT [PROGRAM...]
//
// Without PROGRAM names every program, every map whose name does not start
// with '.' and every entry of spec.Variables is requested (exactly the set
// bpf2go emits, see cmd/bpf2go/main.go convert() in cilium/ebpf v0.22.0).
// With PROGRAM names only those programs are requested; cilium/ebpf then
// lazily creates just the maps they reference.
//
// The result is printed as a single JSON object on stdout:
//
//	{"loaded":bool,"error":string|null,"errno":int|null,
//	 "programs":[...],"maps":[...],"variables":[...]}
//
// Exit status: 0 loaded, 1 load failed, 2 usage error or unreadable object.
//
// RLIMIT_MEMLOCK is deliberately left alone (no rlimit.RemoveMemlock).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/token"
	"os"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"unicode"

	"github.com/cilium/ebpf"
)

type result struct {
	Loaded    bool     `json:"loaded"`
	Error     *string  `json:"error"`
	Errno     *int     `json:"errno"`
	Programs  []string `json:"programs"`
	Maps      []string `json:"maps"`
	Variables []string `json:"variables"`
}

func emit(r *result, code int) {
	if r.Programs == nil {
		r.Programs = []string{}
	}
	if r.Maps == nil {
		r.Maps = []string{}
	}
	if r.Variables == nil {
		r.Variables = []string{}
	}
	out, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cilium-loader: encoding result:", err)
		os.Exit(2)
	}
	os.Stdout.Write(append(out, '\n'))
	os.Exit(code)
}

func fail(r *result, err error, code int) {
	msg := err.Error()
	r.Error = &msg
	var errno syscall.Errno // golang.org/x/sys/unix.Errno is the same type
	if errors.As(err, &errno) {
		n := int(errno)
		r.Errno = &n
	}
	emit(r, code)
}

// identifier turns an ELF name into an exported Go identifier the way bpf2go's
// generated field names read (xdp_stats_map -> XdpStatsMap): characters other
// than letters, digits and underscores are dropped; an underscore is dropped at
// the start and after a digit or a lower-case letter, and the letter after a
// dropped underscore (or the first letter) is upper-cased. Only the error
// messages ("field XdpStatsMap: ...") depend on it: the ebpf tag names the
// object.
func identifier(name string) string {
	var b strings.Builder
	upper := true // at the start, or right after a dropped underscore
	var last rune
	for _, r := range name {
		switch {
		case unicode.IsLetter(r):
			if upper {
				r = unicode.ToUpper(r)
			}
		case unicode.IsDigit(r):
		case r == '_':
			if upper || unicode.IsDigit(last) || unicode.IsLower(last) {
				upper = true
				continue
			}
		default:
			continue
		}
		b.WriteRune(r)
		last, upper = r, false
	}
	return b.String()
}

// fieldNamer hands out bpf2go-style field names, falling back to a unique
// synthetic name where bpf2go's name would not be a usable exported field
// (bpf2go output would not compile in that case).
type fieldNamer map[string]bool

func (seen fieldNamer) name(elfName, kind string, i int) string {
	id := identifier(elfName)
	if !token.IsIdentifier(id) || !token.IsExported(id) || seen[id] {
		id = fmt.Sprintf("X%s%d_", kind, i)
	}
	seen[id] = true
	return id
}

// structOf builds struct{ Field *T `ebpf:"name"` ... } for the given names.
func structOf(names []string, typ reflect.Type, kind string) reflect.Type {
	seen := fieldNamer{}
	fields := make([]reflect.StructField, 0, len(names))
	for i, n := range names {
		fields = append(fields, reflect.StructField{
			Name: seen.name(n, kind, i),
			Type: typ,
			Tag:  reflect.StructTag(fmt.Sprintf(`ebpf:%q`, n)),
		})
	}
	return reflect.StructOf(fields)
}

func sortedKeys[V any](m map[string]V, keep func(string) bool) []string {
	var keys []string
	for k := range m {
		if keep == nil || keep(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// closeAll closes every *ebpf.Program and *ebpf.Map reachable in v, like the
// generated XObjects.Close (Variables have no Close method).
func closeAll(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			closeAll(v.Field(i))
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		switch x := v.Interface().(type) {
		case *ebpf.Program:
			x.Close()
		case *ebpf.Map:
			x.Close()
		}
	}
}

func main() {
	r := &result{}
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: cilium-loader OBJECT [PROGRAM...]")
		fail(r, errors.New("usage: cilium-loader OBJECT [PROGRAM...]"), 2)
	}
	object, wanted := os.Args[1], os.Args[2:]

	spec, err := ebpf.LoadCollectionSpec(object)
	if err != nil {
		fail(r, err, 2)
	}

	if len(wanted) == 0 {
		// Same selection as bpf2go's convert(); the generated template
		// ranges over Go maps, so fields come out sorted by ELF name.
		r.Programs = sortedKeys(spec.Programs, nil)
		r.Maps = sortedKeys(spec.Maps, func(n string) bool { return !strings.HasPrefix(n, ".") })
		r.Variables = sortedKeys(spec.Variables, nil)
	} else {
		seen := map[string]bool{}
		for _, p := range wanted {
			if seen[p] {
				continue
			}
			seen[p] = true
			r.Programs = append(r.Programs, p)
		}
		for _, p := range r.Programs {
			if spec.Programs[p] == nil {
				fail(r, fmt.Errorf("object %s has no program %q (have: %s)",
					object, p, strings.Join(sortedKeys(spec.Programs, nil), ", ")), 2)
			}
		}
	}

	// Mirrors XObjects{XPrograms; XMaps; XVariables}: programs are assigned
	// (and therefore loaded) first, then maps, then variables.
	objType := reflect.StructOf([]reflect.StructField{
		{Name: "Programs", Type: structOf(r.Programs, reflect.TypeFor[*ebpf.Program](), "Prog")},
		{Name: "Maps", Type: structOf(r.Maps, reflect.TypeFor[*ebpf.Map](), "Map")},
		{Name: "Variables", Type: structOf(r.Variables, reflect.TypeFor[*ebpf.Variable](), "Var")},
	})
	objs := reflect.New(objType)

	if err := spec.LoadAndAssign(objs.Interface(), nil); err != nil {
		closeAll(objs.Elem()) // LoadAndAssign cleans up on error; harmless.
		fail(r, err, 1)
	}
	closeAll(objs.Elem())
	r.Loaded = true
	emit(r, 0)
}
