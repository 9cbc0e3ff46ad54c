package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ConditionVersion is the only condition syntax berth reads, as ACR.
const ConditionVersion = "2.0"

// RepositoryNameAttribute is the attribute conditions may test.
const RepositoryNameAttribute = "Microsoft.ContainerRegistry/registries/repositories:name"

// Limits on a condition, so that a stored one can never be costly to evaluate.
const (
	maxConditionBytes = 8 << 10
	maxConditionDepth = 32
)

// Condition is a compiled ABAC condition (version 2.0): a boolean expression over the action
// being done (ActionMatches{'…'}) and the repository name (@Request[…repositories:name]).
type Condition struct {
	root *cnode
	text string
}

// String returns the condition's source.
func (c *Condition) String() string { return c.text }

// Eval reports whether the condition holds for dataAction on repository. It does not allocate.
func (c *Condition) Eval(dataAction, repository string) bool {
	return c.root.eval(dataAction, repository)
}

type cop uint8

const (
	opOr cop = iota
	opAnd
	opNot
	opAction
	opStringEquals
	opStringEqualsIgnoreCase
	opStringStartsWith
	opStringStartsWithIgnoreCase
	opStringLike
)

// operators are the string operators, as Azure spells them.
var operators = []struct {
	name string
	op   cop
}{
	{"StringEquals", opStringEquals},
	{"StringEqualsIgnoreCase", opStringEqualsIgnoreCase},
	{"StringStartsWith", opStringStartsWith},
	{"StringStartsWithIgnoreCase", opStringStartsWithIgnoreCase},
	{"StringLike", opStringLike},
}

func operatorNames() string {
	names := make([]string, len(operators))
	for i, o := range operators {
		names[i] = o.name
	}
	return strings.Join(names, ", ")
}

type cnode struct {
	op     cop
	l, r   *cnode
	value  string
	prefix bool // ActionMatches{'…/*'}
}

func (n *cnode) eval(action, repo string) bool {
	switch n.op {
	case opOr:
		return n.l.eval(action, repo) || n.r.eval(action, repo)
	case opAnd:
		return n.l.eval(action, repo) && n.r.eval(action, repo)
	case opNot:
		return !n.l.eval(action, repo)
	case opAction:
		if n.prefix {
			return len(action) >= len(n.value) && strings.EqualFold(action[:len(n.value)], n.value)
		}
		return strings.EqualFold(action, n.value)
	case opStringEquals:
		return repo == n.value
	case opStringEqualsIgnoreCase:
		return strings.EqualFold(repo, n.value)
	case opStringStartsWith:
		return strings.HasPrefix(repo, n.value)
	case opStringStartsWithIgnoreCase:
		return len(repo) >= len(n.value) && strings.EqualFold(repo[:len(n.value)], n.value)
	case opStringLike:
		return like(repo, n.value)
	}
	return false
}

// like matches s against a pattern where '*' stands for any run of characters and '?' for one.
func like(s, pattern string) bool {
	// Iterative matching with one backtrack point: linear enough, no allocation.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '?':
			_, w := utf8.DecodeRuneInString(s[si:])
			si += w
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pattern) && pattern[pi] == s[si]:
			si++
			pi++
		case star >= 0:
			_, w := utf8.DecodeRuneInString(s[mark:])
			mark += w
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// ConditionError is a condition that does not parse: where, and what was expected.
type ConditionError struct {
	Offset       int // byte offset
	Line, Column int // 1-based
	Msg          string
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("condition: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// ParseCondition compiles a condition of the given version ("" means 2.0).
func ParseCondition(text, version string) (*Condition, error) {
	if version != "" && version != ConditionVersion {
		return nil, fmt.Errorf("condition version %q is not supported: use %s", version, ConditionVersion)
	}
	if len(text) > maxConditionBytes {
		return nil, fmt.Errorf("condition is %d bytes long; the limit is %d", len(text), maxConditionBytes)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("condition is not valid UTF-8")
	}
	p := &cparser{src: text}
	p.next()
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.errorf(p.tok, "expected AND, OR or the end of the condition, found %s", p.tok)
	}
	return &Condition{root: root, text: text}, nil
}

type tkind uint8

const (
	tEOF tkind = iota
	tLParen
	tRParen
	tLBrace
	tRBrace
	tNot
	tWord
	tString
	tAttribute
	tBad
)

type ctoken struct {
	kind tkind
	text string // word, string value, attribute "source[name]"
	pos  int
}

func (t ctoken) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the condition"
	case tString:
		return "'" + t.text + "'"
	case tAttribute:
		return "@" + t.text
	case tBad:
		if utf8.RuneCountInString(t.text) > 1 { // a description; one character is quoted
			return t.text
		}
	}
	return "'" + t.text + "'"
}

type cparser struct {
	src string
	off int
	tok ctoken
	err *ConditionError
}

func (p *cparser) errorf(t ctoken, format string, args ...any) *ConditionError {
	line, col := 1, 1
	for i, r := range p.src {
		if i >= t.pos {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &ConditionError{Offset: t.pos, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// next reads one token into p.tok.
func (p *cparser) next() {
	for p.off < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.off]) >= 0 {
		p.off++
	}
	start := p.off
	if p.off >= len(p.src) {
		p.tok = ctoken{kind: tEOF, pos: start}
		return
	}
	c := p.src[p.off]
	single := map[byte]tkind{'(': tLParen, ')': tRParen, '{': tLBrace, '}': tRBrace, '!': tNot}
	if k, ok := single[c]; ok {
		p.off++
		p.tok = ctoken{kind: k, text: string(c), pos: start}
		return
	}
	switch {
	case c == '\'':
		end := strings.IndexByte(p.src[p.off+1:], '\'')
		if end < 0 {
			p.tok = ctoken{kind: tBad, text: "an unterminated string (a closing ' is missing)", pos: start}
			p.off = len(p.src)
			return
		}
		p.tok = ctoken{kind: tString, text: p.src[p.off+1 : p.off+1+end], pos: start}
		p.off += end + 2
	case c == '@':
		end := strings.IndexByte(p.src[p.off:], ']')
		if end < 0 {
			p.tok = ctoken{kind: tBad, text: "an attribute without its closing ']'", pos: start}
			p.off = len(p.src)
			return
		}
		p.tok = ctoken{kind: tAttribute, text: p.src[p.off+1 : p.off+end+1], pos: start}
		p.off += end + 1
	case c == '&' || c == '|':
		if p.off+1 < len(p.src) && p.src[p.off+1] == c {
			p.off += 2
			p.tok = ctoken{kind: tWord, text: map[byte]string{'&': "AND", '|': "OR"}[c], pos: start}
			return
		}
		p.off++
		p.tok = ctoken{kind: tBad, text: string(c), pos: start}
	case isWordByte(c):
		for p.off < len(p.src) && isWordByte(p.src[p.off]) {
			p.off++
		}
		p.tok = ctoken{kind: tWord, text: p.src[start:p.off], pos: start}
	default:
		_, w := utf8.DecodeRuneInString(p.src[p.off:])
		p.off += w
		p.tok = ctoken{kind: tBad, text: p.src[start:p.off], pos: start}
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c == ':' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *cparser) isWord(w string) bool {
	return p.tok.kind == tWord && strings.EqualFold(p.tok.text, w)
}

func (p *cparser) expr(depth int) (*cnode, error) {
	if depth > maxConditionDepth {
		return nil, p.errorf(p.tok, "the condition nests deeper than %d levels", maxConditionDepth)
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("OR") {
		p.next()
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = &cnode{op: opOr, l: l, r: r}
	}
	return l, nil
}

func (p *cparser) and(depth int) (*cnode, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("AND") {
		p.next()
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = &cnode{op: opAnd, l: l, r: r}
	}
	return l, nil
}

func (p *cparser) unary(depth int) (*cnode, error) {
	if p.tok.kind == tNot || p.isWord("NOT") {
		if depth > maxConditionDepth {
			return nil, p.errorf(p.tok, "the condition nests deeper than %d levels", maxConditionDepth)
		}
		p.next()
		n, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &cnode{op: opNot, l: n}, nil
	}
	return p.primary(depth)
}

func (p *cparser) primary(depth int) (*cnode, error) {
	t := p.tok
	switch {
	case t.kind == tLParen:
		p.next()
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.errorf(p.tok, "expected ')' to close the '(' at column %d, found %s", p.errorf(t, "").Column, p.tok)
		}
		p.next()
		return n, nil
	case p.isWord("ActionMatches"):
		return p.actionMatches()
	case t.kind == tAttribute:
		return p.comparison()
	case t.kind == tBad:
		return nil, p.errorf(t, "unexpected %s", t)
	}
	return nil, p.errorf(t, "expected '(', '!', ActionMatches{'…'} or @Request[%s], found %s", RepositoryNameAttribute, t)
}

func (p *cparser) actionMatches() (*cnode, error) {
	p.next()
	if p.tok.kind != tLBrace {
		return nil, p.errorf(p.tok, "expected '{' after ActionMatches, found %s", p.tok)
	}
	p.next()
	t := p.tok
	if t.kind != tString {
		return nil, p.errorf(t, "expected a quoted action such as '%s', found %s", DataContentRead, t)
	}
	n := &cnode{op: opAction, value: t.text}
	if strings.HasSuffix(t.text, "*") {
		n.value, n.prefix = strings.TrimSuffix(t.text, "*"), true
		if !strings.HasPrefix(strings.ToLower(DataContentRead), strings.ToLower(n.value)) &&
			!strings.HasPrefix(strings.ToLower(DataCatalogRead), strings.ToLower(n.value)) {
			return nil, p.errorf(t, "action pattern '%s' matches no action of Microsoft.ContainerRegistry/registries", t.text)
		}
	} else if !knownDataAction(t.text) {
		return nil, p.errorf(t, "unknown action '%s': expected one of %s", t.text, strings.Join(conditionActions, ", "))
	}
	p.next()
	if p.tok.kind != tRBrace {
		return nil, p.errorf(p.tok, "expected '}' after the action, found %s", p.tok)
	}
	p.next()
	return n, nil
}

var conditionActions = []string{DataContentRead, DataContentWrite, DataContentDelete, DataMetadataRead, DataMetadataWrite, DataMetadataDelete}

func knownDataAction(a string) bool {
	for _, k := range append(conditionActions, DataCatalogRead) {
		if strings.EqualFold(a, k) {
			return true
		}
	}
	return false
}

func (p *cparser) comparison() (*cnode, error) {
	t := p.tok
	source, name, ok := strings.Cut(t.text, "[")
	if !ok || !strings.EqualFold(source, "Request") {
		return nil, p.errorf(t, "attribute %s is not supported: conditions test @Request[%s]", t, RepositoryNameAttribute)
	}
	if !strings.EqualFold(strings.TrimSpace(strings.TrimSuffix(name, "]")), RepositoryNameAttribute) {
		return nil, p.errorf(t, "attribute %s is not supported: conditions test @Request[%s]", t, RepositoryNameAttribute)
	}
	p.next()
	opTok := p.tok
	var op cop
	found := false
	if opTok.kind == tWord {
		for _, o := range operators {
			if strings.EqualFold(o.name, opTok.text) {
				op, found = o.op, true
			}
		}
	}
	if !found {
		return nil, p.errorf(opTok, "expected an operator (%s), found %s", operatorNames(), opTok)
	}
	p.next()
	v := p.tok
	if v.kind != tString {
		return nil, p.errorf(v, "expected a quoted repository name after %s, found %s", opTok.text, v)
	}
	p.next()
	return &cnode{op: op, value: v.text}, nil
}
