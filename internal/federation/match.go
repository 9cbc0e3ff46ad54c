package federation

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Credential is what a federated credential trusts: tokens of Issuer with one of Audiences
// whose subject is Subject exactly, or — beyond Entra's exact match, in the shape of its
// flexible credentials — whose claims satisfy Expression.
type Credential struct {
	Name       string
	Issuer     string
	Subject    string
	Expression string
	Audiences  []string
}

// Match reports whether a verified token satisfies one of the credentials (all of Issuer), and
// which; when none does, the error names the first one's mismatch (the token's signature was
// checked, so its claims may be shown to its holder).
func Match(t *Token, creds []Credential) (Credential, error) {
	var first error
	for _, c := range creds {
		err := c.match(t)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = refuse(ReasonNoCredential, "no federated credential trusts issuer %q", truncate(t.Issuer))
	}
	return Credential{}, first
}

func (c Credential) match(t *Token) error {
	if c.Issuer != t.Issuer {
		return refuse(ReasonNoCredential, "no federated credential trusts issuer %q", truncate(t.Issuer))
	}
	if !slices.ContainsFunc(t.Audience, func(a string) bool { return slices.Contains(c.Audiences, a) }) {
		return refuse(ReasonAudience, "audience %q does not match the federated credential %q (audiences %q)", truncate(strings.Join(t.Audience, ",")), c.Name, strings.Join(c.Audiences, ","))
	}
	if c.Expression != "" {
		e, err := ParseExpression(c.Expression)
		if err != nil {
			return refuse(ReasonSubject, "the federated credential %q: %v", c.Name, err)
		}
		if !e.Eval(t.Claims) {
			return refuse(ReasonSubject, "subject %s does not match the federated credential %q (%s)", truncate(t.Subject), c.Name, c.Expression)
		}
		return nil
	}
	if t.Subject != c.Subject {
		return refuse(ReasonSubject, "subject %s does not match the federated credential %q (subject %s)", truncate(t.Subject), c.Name, c.Subject)
	}
	return nil
}

// MaxExpressionBytes bounds a claims matching expression (Entra: 600 characters for a subject).
const MaxExpressionBytes = 600

// Expression is a claims matching expression in Entra's flexible federated credential grammar:
// one or more `claims['NAME'] matches|eq 'VALUE'` joined by `and`. matches takes * (any run of
// characters) and ? (one character); eq is exact.
type Expression struct {
	terms []term
}

type term struct {
	claim string
	eq    string
	re    *regexp.Regexp // matches
}

var termRE = regexp.MustCompile(`^\s*claims\['([A-Za-z_][A-Za-z0-9_]{0,63})'\]\s+(matches|eq)\s+'([^']*)'\s*`)

// ParseExpression reads a claims matching expression.
func ParseExpression(s string) (*Expression, error) {
	if len(s) > MaxExpressionBytes {
		return nil, fmt.Errorf("the expression is longer than %d characters", MaxExpressionBytes)
	}
	e := &Expression{}
	rest := s
	for {
		m := termRE.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("expected claims['NAME'] matches 'VALUE' or claims['NAME'] eq 'VALUE' at %q", truncate(rest))
		}
		t := term{claim: m[1]}
		if m[2] == "eq" {
			t.eq = m[3]
		} else {
			var b strings.Builder
			b.WriteString("^")
			for _, r := range m[3] {
				switch r {
				case '*':
					b.WriteString(".*")
				case '?':
					b.WriteString(".")
				default:
					b.WriteString(regexp.QuoteMeta(string(r)))
				}
			}
			b.WriteString("$")
			t.re = regexp.MustCompile(b.String())
		}
		e.terms = append(e.terms, t)
		rest = rest[len(m[0]):]
		if rest == "" {
			return e, nil
		}
		after, ok := strings.CutPrefix(rest, "and ")
		if !ok {
			return nil, fmt.Errorf("expected 'and' at %q", truncate(rest))
		}
		rest = after
	}
}

// Eval reports whether claims satisfy every term; a claim that is missing or not a string does
// not.
func (e *Expression) Eval(claims map[string]any) bool {
	for _, t := range e.terms {
		v, ok := claims[t.claim].(string)
		if !ok {
			return false
		}
		if t.re != nil && !t.re.MatchString(v) || t.re == nil && v != t.eq {
			return false
		}
	}
	return len(e.terms) > 0
}
