package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/oci"
)

func TestParseScopes(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    access.Grant
		err     string
		badName bool
	}{
		{[]string{"repository:a/b:pull,push"}, access.Grant{{Type: "repository", Name: "a/b", Actions: []string{"pull", "push"}}}, "", false},
		{[]string{"repository:a:pull repository:a:push,pull", "repository:b:*"}, access.Grant{
			{Type: "repository", Name: "a", Actions: []string{"pull", "push"}},
			{Type: "repository", Name: "b", Actions: []string{"pull", "push", "delete", "metadata_read", "metadata_write"}}}, "", false},
		{[]string{"registry:catalog:*", "registry:catalog:pull"}, access.Grant{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}, "", false},
		{[]string{"repository:a:fly"}, access.Grant{{Type: "repository", Name: "a", Actions: nil}}, "", false},
		{[]string{"aws:thing:pull", "registry:other:*"}, nil, "", false},
		{[]string{"repository:host:5000/a:pull"}, nil, "", true},
		{[]string{"repository:A:pull"}, nil, `scope "repository:A:pull"`, true},
		{[]string{"repository:pull"}, nil, "is not of the form type:name:actions", false},
		{[]string{"repository"}, nil, "is not of the form type:name:actions", false},
		{[]string{"repository:" + strings.Repeat("a", MaxScopeLen) + ":pull"}, nil, "longer than 1024 bytes", false},
		{[]string{manyScopes(MaxScopes + 1)}, nil, "more than 64 scopes", false},
	} {
		g, err := ParseScopes(tc.in)
		var se *ScopeError
		switch {
		case tc.err == "" && !tc.badName && (err != nil || !reflect.DeepEqual(g, tc.want)):
			t.Errorf("%q: %+v, %v; want %+v", tc.in, g, err, tc.want)
		case (tc.err != "" || tc.badName) && (!errors.As(err, &se) || se.Name != tc.badName || !strings.Contains(se.Msg, tc.err)):
			t.Errorf("%q: %v; want a ScopeError (name=%v) containing %q", tc.in, err, tc.badName, tc.err)
		}
	}
	if _, err := ParseScopes([]string{manyScopes(MaxScopes)}); err != nil {
		t.Errorf("%d scopes: %v", MaxScopes, err)
	}
}

func manyScopes(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("repository:r" + strings.Repeat("x", i) + ":pull ")
	}
	return b.String()
}

// FuzzParseScopes: any input is parsed or refused, never more than the bounds, every repository
// valid, and what is parsed reads back the same from its own strings.
func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"repository:a/b:pull,push", "registry:catalog:*", "repository:a:*", "repository:a:pull repository:a:push", "x:y:z", "repository::pull"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		g, err := ParseScopes([]string{in})
		if err != nil {
			var se *ScopeError
			if !errors.As(err, &se) {
				t.Fatalf("%q: error %v is not a ScopeError", in, err)
			}
			return
		}
		if len(g) > MaxScopes {
			t.Fatalf("%q: %d scopes", in, len(g))
		}
		var again []string
		for _, s := range g {
			if s.Type == TypeRepository && oci.ValidateName(s.Name) != nil {
				t.Fatalf("%q: invalid name %q accepted", in, s.Name)
			}
			if len(s.Actions) > 0 {
				again = append(again, s.String())
			}
		}
		g2, err := ParseScopes(again)
		if err != nil {
			t.Fatalf("%q: its own scopes %q: %v", in, again, err)
		}
		var kept access.Grant
		for _, s := range g {
			if len(s.Actions) > 0 {
				kept = append(kept, s)
			}
		}
		if !reflect.DeepEqual(kept, g2) {
			t.Fatalf("%q: %+v reads back as %+v", in, kept, g2)
		}
	})
}
