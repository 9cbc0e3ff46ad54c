package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// mutant is one small change to one source file.
type mutant struct {
	File     string // relative to the module root
	Func     string // enclosing function ("Type.Method" or "name")
	Operator string
	Line     int
	Col      int
	start    int // byte offsets of the replaced text
	end      int
	Orig     string
	Repl     string
	// Key names the mutant independently of line numbers: file, function, operator, change and
	// its ordinal among identical changes in that function.
	Key string
}

// Operators, named as gremlins names its own where they are the same.
const (
	opNegation  = "CONDITIONALS_NEGATION" // == ↔ !=, < ↔ >=, > ↔ <=
	opBoundary  = "CONDITIONALS_BOUNDARY" // < ↔ <=, > ↔ >=
	opLogical   = "INVERT_LOGICAL"        // && ↔ ||
	opArith     = "ARITHMETIC_BASE"       // + ↔ -, * ↔ /
	opIncDec    = "INCREMENT_DECREMENT"   // ++ ↔ --
	opNegCond   = "NEGATE_CONDITION"      // if c → if !(c), if !c → if c
	opBool      = "BOOLEAN_LITERAL"       // true ↔ false
	opRemove    = "REMOVE_CALL"           // a call statement deleted
	opRemoveRet = "REMOVE_GUARD_RETURN"   // if c { return … } → the whole statement deleted
)

var (
	negation = map[token.Token]token.Token{token.EQL: token.NEQ, token.NEQ: token.EQL, token.LSS: token.GEQ,
		token.GEQ: token.LSS, token.GTR: token.LEQ, token.LEQ: token.GTR}
	boundary = map[token.Token]token.Token{token.LSS: token.LEQ, token.LEQ: token.LSS, token.GTR: token.GEQ, token.GEQ: token.GTR}
	arith    = map[token.Token]token.Token{token.ADD: token.SUB, token.SUB: token.ADD, token.MUL: token.QUO, token.QUO: token.MUL}
)

// logMethods are calls whose removal only loses a log line: not mutated (their content is
// checked by TestNoSecretsInLogs and the access-log tests, not by removing them).
var logMethods = map[string]bool{"Debug": true, "Info": true, "Warn": true, "Error": true,
	"DebugContext": true, "InfoContext": true, "WarnContext": true, "ErrorContext": true}

// findMutants lists the mutants of one non-test Go file.
func findMutants(root, rel string) ([]mutant, error) {
	src, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []mutant
	add := func(fn, op string, start, end token.Pos, repl string) {
		s, e := fset.Position(start), fset.Position(end)
		out = append(out, mutant{File: rel, Func: fn, Operator: op, Line: s.Line, Col: s.Column,
			start: s.Offset, end: e.Offset, Orig: string(src[s.Offset:e.Offset]), Repl: repl})
	}
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		fn := fd.Name.Name
		if fd.Recv != nil && len(fd.Recv.List) > 0 {
			fn = recvName(fd.Recv.List[0].Type) + "." + fn
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if isStringLit(n.X) || isStringLit(n.Y) {
					return true // string concatenation and comparison with literals: + ↔ - does not compile
				}
				if r, ok := negation[n.Op]; ok {
					add(fn, opNegation, n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), r.String())
				}
				if r, ok := boundary[n.Op]; ok {
					add(fn, opBoundary, n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), r.String())
				}
				if r, ok := arith[n.Op]; ok {
					add(fn, opArith, n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), r.String())
				}
				switch n.Op {
				case token.LAND:
					add(fn, opLogical, n.OpPos, n.OpPos+2, "||")
				case token.LOR:
					add(fn, opLogical, n.OpPos, n.OpPos+2, "&&")
				}
			case *ast.IncDecStmt:
				r := map[token.Token]string{token.INC: "--", token.DEC: "++"}[n.Tok]
				add(fn, opIncDec, n.TokPos, n.TokPos+2, r)
			case *ast.Ident:
				switch n.Name {
				case "true":
					add(fn, opBool, n.Pos(), n.End(), "false")
				case "false":
					add(fn, opBool, n.Pos(), n.End(), "true")
				}
			case *ast.IfStmt:
				if _, bin := n.Cond.(*ast.BinaryExpr); !bin { // binary ones have their own operators
					if u, ok := n.Cond.(*ast.UnaryExpr); ok && u.Op == token.NOT {
						add(fn, opNegCond, u.Pos(), u.X.Pos(), "")
					} else {
						add(fn, opNegCond, n.Cond.Pos(), n.Cond.End(), "!("+string(src[fset.Position(n.Cond.Pos()).Offset:fset.Position(n.Cond.End()).Offset])+")")
					}
				}
				if n.Init == nil && n.Else == nil && endsInReturn(n.Body) && !isErrCheck(n.Cond) {
					add(fn, opRemoveRet, n.Pos(), n.End(), "")
				}
			case *ast.ExprStmt:
				if call, ok := n.X.(*ast.CallExpr); ok && !isLogCall(call) && !isPanic(call) {
					add(fn, opRemove, n.Pos(), n.End(), "")
				}
			}
			return true
		})
	}
	seen := map[string]int{}
	for i := range out {
		m := &out[i]
		base := fmt.Sprintf("%s:%s:%s:%s→%s", m.File, m.Func, m.Operator, oneLine(m.Orig), oneLine(m.Repl))
		seen[base]++
		m.Key = fmt.Sprintf("%s#%d", base, seen[base])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out, nil
}

// apply returns src with m applied.
func (m mutant) apply(src []byte) []byte {
	out := make([]byte, 0, len(src)+len(m.Repl))
	out = append(out, src[:m.start]...)
	out = append(out, m.Repl...)
	return append(out, src[m.end:]...)
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	}
	return "?"
}

func isStringLit(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.STRING
}

func isLogCall(c *ast.CallExpr) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	return ok && logMethods[sel.Sel.Name]
}

func isPanic(c *ast.CallExpr) bool {
	id, ok := c.Fun.(*ast.Ident)
	return ok && id.Name == "panic"
}

// isErrCheck is "err != nil": removing such a guard rarely compiles, and negating it is a
// mutant of its own.
func isErrCheck(e ast.Expr) bool {
	b, ok := e.(*ast.BinaryExpr)
	if !ok || b.Op != token.NEQ {
		return false
	}
	id, ok := b.Y.(*ast.Ident)
	return ok && id.Name == "nil"
}

func endsInReturn(b *ast.BlockStmt) bool {
	if len(b.List) == 0 {
		return false
	}
	_, ok := b.List[len(b.List)-1].(*ast.ReturnStmt)
	return ok
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "…"
	}
	return s
}
