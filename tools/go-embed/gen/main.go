// Command go-embed-gen turns an existing BPF ELF object into the Go source
// bpf2go would generate for it, using bpf2go's own generator package
// (github.com/cilium/ebpf/cmd/bpf2go/gen, cilium/ebpf v0.22.0), plus a
// main.go that calls the generated load<Ident>Objects.
//
// bpf2go itself always compiles a C file first (there is no mode that takes
// an existing object), so this program replays the second half of bpf2go's
// convert(): LoadCollectionSpec, select maps/variables/programs the same way,
// collect global types (unless -no-global-types), then gen.Generate with the
// same arguments bpf2go passes. The object is copied next to the Go file
// under bpf2go's naming scheme (<stem>_<target>.o), embedded with go:embed.
//
// Usage: go-embed-gen [-ident bpf] [-go-package main] [-target bpfel|bpfeb|GOARCH]
//
//	[-output-dir .] [-no-global-types] [-main=true] OBJECT
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"go/build/constraint"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/cmd/bpf2go/gen"
)

var mainTemplate = template.Must(template.New("main").Parse(`// Sample program calling the bpf2go-generated loader; written by go-embed-gen.
package {{ .Package }}

import (
	"fmt"
	"os"
)

func main() {
	var objs {{ .Objects }}
	if err := {{ .LoadObjects }}(&objs, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := objs.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(1)
	}
	fmt.Println("loaded")
}
`))

func toUpperFirst(str string) string {
	first, n := utf8.DecodeRuneInString(str)
	return string(unicode.ToUpper(first)) + str[n:]
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func run() error {
	ident := flag.String("ident", "bpf", "bpf2go ident stem (first positional argument of bpf2go)")
	pkg := flag.String("go-package", "main", "package of the generated files")
	targetID := flag.String("target", "", "bpf2go target (bpfel, bpfeb, bpf, native or a GOARCH); default: the object's endianness")
	outDir := flag.String("output-dir", ".", "directory for generated files")
	outStem := flag.String("output-stem", "", "file name stem (default: lower-case ident, as bpf2go)")
	noGlobalTypes := flag.Bool("no-global-types", false, "as bpf2go -no-global-types; if unset and generating types fails, retry without them")
	writeMain := flag.Bool("main", true, "also write main.go calling load<Ident>Objects")
	flag.Parse()
	if flag.NArg() != 1 {
		return errors.New("usage: go-embed-gen [flags] OBJECT")
	}
	object := flag.Arg(0)

	if *targetID == "" {
		f, err := elf.Open(object)
		if err != nil {
			return err
		}
		if f.Data == elf.ELFDATA2MSB {
			*targetID = "bpfeb"
		} else {
			*targetID = "bpfel"
		}
		f.Close()
	}
	tgt, goarches, err := gen.FindTarget(*targetID)
	if err != nil {
		return err
	}

	outputStem := *outStem
	if outputStem == "" {
		outputStem = strings.ToLower(*ident)
	}
	stem := fmt.Sprintf("%s_%s", outputStem, tgt.Suffix())
	objFileName := filepath.Join(*outDir, stem+".o")
	goFileName := filepath.Join(*outDir, stem+".go")

	// From here on this mirrors cmd/bpf2go/main.go convert() after compile.
	spec, err := ebpf.LoadCollectionSpec(object)
	if err != nil {
		return fmt.Errorf("can't load BPF from ELF: %s", err)
	}

	var maps []string
	for name := range spec.Maps {
		// Skip .rodata, .data, .bss, etc. sections
		if !strings.HasPrefix(name, ".") {
			maps = append(maps, name)
		}
	}
	var variables []string
	for name := range spec.Variables {
		variables = append(variables, name)
	}
	var programs []string
	for name := range spec.Programs {
		programs = append(programs, name)
	}

	var constraints constraint.Expr = goarches.Constraint()

	generate := func(types []btf.Type) error {
		goFile, err := os.Create(goFileName)
		if err != nil {
			return err
		}
		err = gen.Generate(gen.GenerateArgs{
			Package:     *pkg,
			Stem:        *ident,
			Constraints: constraints,
			Maps:        maps,
			Variables:   variables,
			Programs:    programs,
			Types:       types,
			ObjectFile:  filepath.Base(objFileName),
			Output:      goFile,
		})
		if cerr := goFile.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(goFileName)
		}
		return err
	}

	var types []btf.Type
	if !*noGlobalTypes {
		types = gen.CollectGlobalTypes(spec)
	}
	if err := generate(types); err != nil {
		if len(types) == 0 {
			return fmt.Errorf("can't write %s: %s", goFileName, err)
		}
		if err2 := generate(nil); err2 != nil {
			return fmt.Errorf("can't write %s: %s", goFileName, err)
		}
	}

	if err := copyFile(objFileName, object); err != nil {
		return err
	}

	if *writeMain {
		// Same naming as gen's templateName.Objects()/LoadObjects().
		loadObjects := "load" + toUpperFirst(*ident) + "Objects"
		if token.IsExported(*ident) {
			loadObjects = toUpperFirst(loadObjects)
		}
		f, err := os.Create(filepath.Join(*outDir, "main.go"))
		if err != nil {
			return err
		}
		err = mainTemplate.Execute(f, map[string]string{
			"Package":     *pkg,
			"Objects":     *ident + "Objects",
			"LoadObjects": loadObjects,
		})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go-embed-gen:", err)
		os.Exit(1)
	}
}
