package client

import (
	"maps"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://r.example/oauth2/token",service="r.example"`, "bearer",
			map[string]string{"realm": "https://r.example/oauth2/token", "service": "r.example"}},
		{`Bearer realm="http://h/oauth2/token",service="h",scope="repository:a:pull,push repository:b:pull",error="insufficient_scope"`, "bearer",
			map[string]string{"realm": "http://h/oauth2/token", "service": "h", "scope": "repository:a:pull,push repository:b:pull", "error": "insufficient_scope"}},
		{`Basic realm="Registry Realm"`, "basic", map[string]string{"realm": "Registry Realm"}},
		{`BEARER  Realm = "x" , SERVICE=y`, "bearer", map[string]string{"realm": "x", "service": "y"}},
		{`Bearer realm="a \"quoted\" \\ realm"`, "bearer", map[string]string{"realm": `a "quoted" \ realm`}},
		{`Bearer realm="unterminated`, "bearer", map[string]string{"realm": "unterminated"}},
		{`Bearer`, "bearer", map[string]string{}},
		{``, "", map[string]string{}},
		{`Bearer =x,realm=r`, "bearer", map[string]string{"realm": "r"}},
		{`Bearer garbage`, "bearer", map[string]string{}},
	} {
		scheme, params := ParseChallenge(tc.in)
		if scheme != tc.scheme || !maps.Equal(params, tc.params) {
			t.Errorf("ParseChallenge(%q) = %q, %v; want %q, %v", tc.in, scheme, params, tc.scheme, tc.params)
		}
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://r.example/oauth2/token",service="r.example",scope="repository:a:pull,push"`)
	f.Add(`Basic realm="x\"y"`)
	f.Fuzz(func(t *testing.T, h string) {
		scheme, params := ParseChallenge(h)
		if params == nil {
			t.Fatal("nil params")
		}
		for k := range params {
			if k == "" {
				t.Fatalf("an empty parameter name from %q", h)
			}
		}
		_ = scheme
	})
}
