package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// handMutant is a mutation written by hand: exact replacements in one file, and the tests that
// must notice it. When the code moves, a replacement that no longer matches exactly once fails
// the run: rewrite it against the new code, do not drop it.
type handMutant struct {
	Name  string
	File  string
	Edits [][2]string // old → new, each old found exactly once
	Tests []string
	Test  string // the test that kills it (as the note says)
}

// handMutants are the nine mutations issue 14 found surviving every test.
var handMutants = []handMutant{
	// Since issue 15 the mount rule and the grant intersection are policy's (DecideMount, decide).
	{"mount ignores the caller's rights on the source", "internal/distribution/uploads.go",
		[][2]string{{"if !h.policy.DecideMount(ctx, req.principal, res, hasFrom).Allow {", "if false && !h.policy.DecideMount(ctx, req.principal, res, hasFrom).Allow {"}},
		[]string{"./internal/distribution"}, "TestMountNeedsPullOnTheSource"},
	{"/oauth2/token does not bound a scoped principal's grant", "internal/policy/policy.go",
		[][2]string{{"\td := decidePolicy(s, p, a, res, tr)\n\tif !p.Scoped {", "\td := decidePolicy(s, p, a, res, tr)\n\tif true || !p.Scoped {"}},
		[]string{"./internal/oauth", "./internal/policy"}, "TestAccessTokenAsPasswordIsBounded, TestAccessTokenGrant"},
	{"a token's id and name need not match", "internal/policy/policy.go",
		[][2]string{{"case !ok || t.name != p.Name:", "case !ok:"}}, []string{"./internal/policy"}, "TestStalePrincipals"},
	{"control-plane decisions skip the identity-exists check", "internal/policy/control.go",
		[][2]string{{"if !s.exists(p) {", "if false && !s.exists(p) {"}}, []string{"./internal/policy"}, "TestStalePrincipals"},
	{"a retired signing key still verifies", "internal/token/token.go",
		[][2]string{{"if k.kid == kid && now.Before(k.retireAt) {", "if k.kid == kid && (now.Before(k.retireAt) || true) {"}},
		[]string{"./internal/token", "./internal/oauth"}, "TestRetiredKeyStopsVerifying, TestKeyRotation"},
	{"per-address throttling ignored", "internal/authn/signin.go",
		[][2]string{{"s.st.SigninStates(ctx, pairKey, ipKey, key, okKey)", "s.st.SigninStates(ctx, pairKey, key, okKey)"},
			{"until = later(u1, u2)", "until = later(u1, u2.AddDate(-100, 0, 0))"}},
		[]string{"./internal/oauth"}, "TestSigninThrottlingByAddress"},
	{"a successful sign-in does not clear the failures", "internal/authn/signin.go",
		[][2]string{{"if _, failed := states[pairKey]; failed {", "if _, failed := states[pairKey]; failed && false {"}},
		[]string{"./internal/oauth"}, "TestSigninSuccessForgetsFailures"},
	{"a refresh token written to the log", "internal/oauth/oauth.go",
		[][2]string{{`"refresh token issued", "registry", reg.Name, "principal", p.String())`, `"refresh token issued", "registry", reg.Name, "principal", p.String(), "token", signed)`}},
		[]string{"./internal/oauth"}, "TestNoSecretsInLogs"},
	{"a blob acknowledged without its fsync", "internal/blob/fsblob/fsblob.go",
		[][2]string{{"\tif err := syncFile(w.f); err != nil {\n\t\treturn blob.Info{}, fmt.Errorf(\"fsblob: commit", "\tif err := error(nil); err != nil {\n\t\treturn blob.Info{}, fmt.Errorf(\"fsblob: commit"}},
		[]string{"./internal/blob/fsblob"}, "TestCommitIsDurable"},
}

type handResult struct {
	handMutant
	Status string
	Detail string
}

func runHand(root, work string) []handResult {
	out := make([]handResult, 0, len(handMutants))
	for i, h := range handMutants {
		r := handResult{handMutant: h}
		src, err := os.ReadFile(filepath.Join(root, h.File))
		if err != nil {
			r.Status, r.Detail = NotViable, err.Error()
			out = append(out, r)
			continue
		}
		for _, e := range h.Edits {
			if n := bytes.Count(src, []byte(e[0])); n != 1 {
				r.Status, r.Detail = NotViable, fmt.Sprintf("%q is found %d times in %s, not once: rewrite the mutant against the code", e[0], n, h.File)
				break
			}
			src = bytes.Replace(src, []byte(e[0]), []byte(e[1]), 1)
		}
		if r.Status == "" {
			r.Status, r.Detail = testWith(root, filepath.Join(work, fmt.Sprintf("hand%d", i)), map[string][]byte{h.File: src}, h.Tests, 10*time.Minute)
			if r.Status == Killed {
				r.Detail = ""
			}
		}
		fmt.Fprintf(os.Stderr, "hand mutant %d (%s): %s\n", i+1, h.Name, r.Status)
		out = append(out, r)
	}
	return out
}
