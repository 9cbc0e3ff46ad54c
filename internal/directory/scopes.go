package directory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

// ScopeMapActions are the actions a scope map may grant on repositories.
var ScopeMapActions = []string{"content/delete", "content/read", "content/write", "metadata/read", "metadata/write"}

// RepositoryActions is one repository pattern with its actions, as `--repository` takes them.
type RepositoryActions struct {
	Repository string
	Actions    []string
}

// ScopeRules checks repository patterns and actions by ACR's rules and returns the rules they
// make: a pattern is a repository name, a prefix ending in "/*" (one wildcard, at the end) or
// "*" alone; actions are case-insensitive.
func ScopeRules(repos []RepositoryActions) ([]store.ScopeRule, error) {
	var out []store.ScopeRule
	for _, r := range repos {
		if err := ValidatePattern(r.Repository); err != nil {
			return nil, err
		}
		if len(r.Actions) == 0 {
			return nil, fmt.Errorf("At least one action must be specified with %q.", r.Repository)
		}
		for _, a := range r.Actions {
			a = strings.ToLower(a)
			if !contains(ScopeMapActions, a) {
				return nil, fmt.Errorf("Invalid action %q provided. Valid actions are {%s}.", a, strings.Join(ScopeMapActions, ", "))
			}
			out = append(out, store.ScopeRule{Repository: r.Repository, Action: a})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Repository != out[j].Repository {
			return out[i].Repository < out[j].Repository
		}
		return out[i].Action < out[j].Action
	})
	return out, nil
}

// ValidatePattern checks one scope-map repository pattern.
func ValidatePattern(p string) error {
	if p == "*" {
		return nil
	}
	name := p
	if strings.HasSuffix(p, "/*") {
		name = strings.TrimSuffix(p, "/*")
	}
	if strings.Contains(name, "*") {
		return fmt.Errorf("repository pattern %q is invalid: a wildcard must be the last path component ('samples/*'), appear once, or be '*' alone", p)
	}
	if err := oci.ValidateName(name); err != nil {
		return fmt.Errorf("repository pattern %q is invalid: %w", p, err)
	}
	return nil
}

// ARMActions renders rules in ARM's form, "repositories/samples/*/content/read".
func ARMActions(rules []store.ScopeRule) []string {
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		out = append(out, "repositories/"+r.Repository+"/"+r.Action)
	}
	return out
}

// ParseARMAction reads one "repositories/<pattern>/<content|metadata>/<op>" action.
func ParseARMAction(s string) (RepositoryActions, error) {
	rest, ok := strings.CutPrefix(s, "repositories/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) < 3 {
		return RepositoryActions{}, fmt.Errorf("action %q is not of the form repositories/<repository>/<content|metadata>/<operation>", s)
	}
	n := len(parts)
	return RepositoryActions{Repository: strings.Join(parts[:n-2], "/"), Actions: []string{parts[n-2] + "/" + parts[n-1]}}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
