package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/oci"
)

// Bounds of a token request's scopes.
const (
	MaxScopes   = 64
	MaxScopeLen = 1024
)

// ScopeError is a malformed scope; Name is set when the repository name is what is wrong.
type ScopeError struct {
	Msg  string
	Name bool
}

func (e *ScopeError) Error() string { return e.Msg }

// ParseScopes reads Docker scope strings ("repository:samples/a:pull,push",
// "registry:catalog:*"), several per parameter when separated by spaces, into a grant: one entry
// per resource, its actions merged, "*" on a repository spelled out, unknown actions dropped.
// Unknown resource types are ignored, as the Docker token specification allows; malformed
// scopes, too many or too long, are a *ScopeError.
func ParseScopes(params []string) (access.Grant, error) {
	var out access.Grant
	index := map[string]int{}
	for _, param := range params {
		for _, s := range strings.Fields(param) {
			if len(s) > MaxScopeLen {
				return nil, &ScopeError{Msg: fmt.Sprintf("a scope is longer than %d bytes", MaxScopeLen)}
			}
			typ, rest, ok1 := strings.Cut(s, ":")
			i := strings.LastIndexByte(rest, ':')
			if !ok1 || i <= 0 {
				return nil, &ScopeError{Msg: fmt.Sprintf("scope %q is not of the form type:name:actions", truncate(s))}
			}
			name, actions := rest[:i], strings.Split(rest[i+1:], ",")
			switch {
			case typ == TypeRepository:
				if err := oci.ValidateName(name); err != nil {
					return nil, &ScopeError{Msg: fmt.Sprintf("scope %q: %v", truncate(s), err), Name: true}
				}
				actions = expand(actions)
			case typ == TypeRegistry && name == "catalog":
				actions = []string{string(ActionCatalog)}
			default:
				continue
			}
			k := typ + ":" + name
			if j, ok := index[k]; ok {
				out[j].Actions = union(out[j].Actions, actions)
				continue
			}
			if len(out) >= MaxScopes {
				return nil, &ScopeError{Msg: fmt.Sprintf("more than %d scopes in one request", MaxScopes)}
			}
			index[k] = len(out)
			out = append(out, access.Scope{Type: typ, Name: name, Actions: union(nil, actions)})
		}
	}
	return out, nil
}

// expand keeps the known repository actions and spells out "*".
func expand(actions []string) []string {
	var out []string
	for _, a := range actions {
		if a == "*" {
			for _, ra := range RepositoryActions {
				out = append(out, string(ra))
			}
			continue
		}
		for _, ra := range RepositoryActions {
			if a == string(ra) {
				out = append(out, a)
			}
		}
	}
	return out
}

func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
