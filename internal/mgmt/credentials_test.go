package mgmt_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

type credsJSON struct {
	Username  string
	Passwords []struct {
		Name  string
		Value *string
	}
}

func (c credsJSON) value(name string) string {
	for _, p := range c.Passwords {
		if p.Name == name && p.Value != nil {
			return *p.Value
		}
	}
	return ""
}

// signsIn reports whether the admin user's name and password get a registry token.
func signsIn(t *testing.T, s *registrytest.Server, user, password string) bool {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service=team.example&scope=repository:a:pull", nil)
	req.Host = "team.example"
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestAdminCredentialsAsACR (issue 18): the admin user's passwords are kept sealed with the
// key-encryption key and listCredentials returns both, as often as asked, to the roles that hold
// registries/credentials/list — never to a read-only role; each read is a login event naming
// the caller; a renewal returns both values; the store holds no password in clear, and a sealed
// value moved into another registry's row does not open there.
func TestAdminCredentialsAsACR(t *testing.T) {
	ctx := context.Background()
	s := registrytest.New(t, registrytest.Options{})
	var reg struct{ Credentials credsJSON }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "team", "loginServer": "team.example", "adminUserEnabled": true}, &reg); st != 201 {
		t.Fatalf("create: %d", st)
	}
	first, second := reg.Credentials.value("password"), reg.Credentials.value("password2")
	if first == "" || second == "" {
		t.Fatalf("enabling the admin user showed %+v", reg.Credentials)
	}
	list := func(tok string) (int, credsJSON) {
		var c credsJSON
		return s.MgmtAs(t, tok, "POST", "/mgmt/v1/registries/team/listCredentials", nil, &c), c
	}
	owner := s.OwnerToken(t)
	for i := range 2 { // not only the first time
		st, c := list(owner)
		if st != 200 || c.Username != "team" || c.value("password") != first || c.value("password2") != second {
			t.Fatalf("listCredentials #%d: %d %+v", i+1, st, c)
		}
	}
	if !signsIn(t, s, "team", first) || !signsIn(t, s, "team", second) {
		t.Fatal("the listed passwords do not sign in")
	}

	// Who may list: the roles with registries/credentials/list, at the registry.
	for _, c := range []struct {
		role string
		want int
	}{
		{"Contributor", 200},
		{"Container Registry Contributor and Data Access Configuration Administrator", 200},
		{"Reader", 403},
		{"Container Registry Configuration Reader and Data Access Configuration Reader", 403},
		{"Role Based Access Control Administrator", 403},
		{"AcrPush", 403},
	} {
		name := "u" + string(rune('a'+len(c.role)%26)) + string(rune('a'+len(c.role)/26))
		var u struct{ Password string }
		if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": name}, &u); st != 201 {
			t.Fatalf("user %s: %d", name, st)
		}
		if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": name, "role": c.role, "scope": "/registries/team"}, nil); st != 201 {
			t.Fatalf("assign %s: %d", c.role, st)
		}
		_, tok, _ := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {name}, "password": {u.Password}})
		st, got := list(tok)
		if st != c.want || (st == 200) != (got.value("password") == first) {
			t.Errorf("%s: listCredentials answered %d (%+v), want %d", c.role, st, got, c.want)
		}
		// The read-only roles see the password names, not their values.
		if st := s.MgmtAs(t, tok, "GET", "/mgmt/v1/registries/team/credentials", nil, nil); (c.role == "Reader" || c.want == 200) && st != 200 {
			t.Errorf("%s: the password names answered %d", c.role, st)
		}
	}

	// A renewal answers both values, as az acr credential renew; the other password stays.
	var renewed credsJSON
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/team/credentials/renew", map[string]string{"name": "password"}, &renewed); st != 200 {
		t.Fatalf("renew: %d", st)
	}
	if n := renewed.value("password"); n == "" || n == first || renewed.value("password2") != second {
		t.Fatalf("renewed: %+v", renewed)
	}
	if _, c := list(owner); c.value("password") != renewed.value("password") || signsIn(t, s, "team", first) {
		t.Errorf("after the renewal: listed %+v; the old password still signs in: %v", c, signsIn(t, s, "team", first))
	}

	// Each read is an event naming the caller.
	s.SettleEvents(t)
	events, err := s.Meta().LoginEvents(ctx, store.EventFilter{Registries: []string{"team"}, Operation: "list_credentials"})
	if err != nil {
		t.Fatal(err)
	}
	byReason := map[string]int{}
	for _, e := range events {
		if e.Identity == "" || e.IdentityKind != "user" || e.Result != store.ResultSuccess {
			t.Errorf("event %+v", e)
		}
		byReason[e.Reason]++
	}
	if byReason["admin_credentials_listed"] != 5 || byReason["admin_credential_renewed"] != 1 || byReason["admin_enabled"] != 1 {
		t.Errorf("list_credentials events by reason: %v (want 5 listed: owner twice and three roles; 1 renewed; 1 enabled)", byReason)
	}

	// At rest: a hash and a sealed value, never the password.
	regs, err := s.Meta().Registries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var teamID, defaultID int64
	for _, r := range regs {
		switch r.Name {
		case "team":
			teamID = r.ID
		case "default":
			defaultID = r.ID
		}
	}
	secs, err := s.Meta().Secrets(ctx, store.KindAdmin, teamID)
	if err != nil || len(secs) != 2 {
		t.Fatalf("secrets: %v %v", secs, err)
	}
	for _, sec := range secs {
		if len(sec.Sealed) == 0 || bytes.Contains(sec.Sealed, []byte(second)) || bytes.Contains(sec.Sealed, []byte(renewed.value("password"))) || sec.Hash == second {
			t.Errorf("secret %s at rest: sealed %q", sec.Name, sec.Sealed)
		}
	}
	// The default registry's admin user gets team's sealed password2 copied into its row: it
	// does not open there (bound to its row), so nothing is shown.
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, nil)
	moved := secs[1]
	if moved.Name != "password2" {
		t.Fatalf("secrets in order: %v", secs)
	}
	if err := s.Meta().PutSecret(ctx, store.KindAdmin, defaultID, moved); err != nil {
		t.Fatal(err)
	}
	var def credsJSON
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/listCredentials", nil, &def); st != 200 || def.value("password2") != "" || def.value("password") == "" {
		t.Errorf("a sealed value moved to another registry: %d %+v", st, def)
	}
	// A password from before berth kept them sealed has no value until renewed.
	legacy := secs[0]
	legacy.Sealed = nil
	if err := s.Meta().PutSecret(ctx, store.KindAdmin, teamID, legacy); err != nil {
		t.Fatal(err)
	}
	if _, c := list(owner); c.value("password") != "" || c.value("password2") != second || len(c.Passwords) != 2 {
		t.Errorf("with a password from before: %+v", c)
	}
	// Off, the admin user has nothing to show.
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/team", map[string]any{"adminUserEnabled": false}, nil)
	if st, _ := list(owner); st != http.StatusConflict {
		t.Errorf("listCredentials with the admin user off: %d", st)
	}
}
