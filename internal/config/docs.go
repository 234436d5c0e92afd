package config

import (
	_ "embed"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"sync"
)

// configSource is config.go itself: its field doc comments are the key
// descriptions printed by `config default`, so the docs cannot drift from
// the code.
//
//go:embed config.go
var configSource string

var (
	docsOnce sync.Once
	docs     map[string]string // "Type.Field" -> doc comment as one paragraph
)

// fieldDoc returns the doc comment of field in struct type owner.
func fieldDoc(owner, field string) string {
	docsOnce.Do(func() {
		docs = parseFieldDocs(configSource)
	})
	return docs[owner+"."+field]
}

func parseFieldDocs(src string) map[string]string {
	out := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", src, parser.ParseComments)
	if err != nil {
		return out // impossible: the package compiled; tests check every key has a doc
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			if fld.Doc == nil {
				continue
			}
			text := strings.Join(strings.Fields(fld.Doc.Text()), " ")
			for _, name := range fld.Names {
				out[ts.Name.Name+"."+name.Name] = text
			}
		}
		return false
	})
	return out
}
