package mgmt_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// cpTable is testdata/control-plane.txt.
type cpTable struct {
	roles   []string
	perms   map[string][]string // role → permissions
	actions []cpAction
}

type cpAction struct {
	name    string
	needs   []string // PERMISSION@SCOPE, role@team
	rule    string   // -, manage, scope
	targets []string // none less equal more, or [""] for actions without a target
}

func readControlPlane(t *testing.T) cpTable {
	t.Helper()
	f, err := os.Open("testdata/control-plane.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tb := cpTable{perms: map[string][]string{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		fields := strings.Split(rest, "|")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		list := func(s string) []string {
			if s == "-" {
				return nil
			}
			return strings.Fields(s)
		}
		switch {
		case kind == "perms" && len(fields) == 2:
			tb.roles = append(tb.roles, fields[0])
			tb.perms[fields[0]] = list(fields[1])
		case kind == "action" && len(fields) == 4:
			a := cpAction{name: fields[0], needs: list(fields[1]), rule: fields[2], targets: list(fields[3])}
			if len(a.targets) == 0 {
				a.targets = []string{""}
			}
			tb.actions = append(tb.actions, a)
		default:
			t.Fatalf("control-plane.txt:%d: cannot read %q", n, line)
		}
	}
	return tb
}

// cpCaller is who acts: a user holding one role at one scope.
type cpCaller struct {
	role, scope string // scope "/" or "team"
	user, token string
}

// holds says whether the caller's role gives perm at scope at ("/" or "team").
func (tb cpTable) holds(c cpCaller, perm, at string) bool {
	return slices.Contains(tb.perms[c.role], perm) && (c.scope == "/" || c.scope == at)
}

// targetRoles is what a target holds: [role, scope] pairs.
func targetRoles(c cpCaller, target string) [][2]string {
	switch target {
	case "less":
		return [][2]string{{"AcrPull", "team"}}
	case "equal":
		return [][2]string{{c.role, c.scope}}
	case "more":
		return [][2]string{{"Owner", "/"}}
	}
	return nil
}

// expect is the table's answer for one cell.
func (tb cpTable) expect(c cpCaller, a cpAction, target string) bool {
	for _, need := range a.needs {
		perm, at, _ := strings.Cut(need, "@")
		if perm == "role" {
			continue // every caller holds a role that covers team: at "/" or at team
		}
		if !tb.holds(c, perm, at) {
			return false
		}
	}
	switch a.rule {
	case "manage", "scope":
		for _, r := range targetRoles(c, target) {
			if !tb.holds(c, "assignments/write", r[1]) {
				return false
			}
		}
	}
	return true
}

func scopePath(scope string) string {
	if scope == "/" {
		return "/"
	}
	return "/registries/" + scope
}

// transport sends the caller's request: over a socket, or in-process on the server's handler.
type transport func(t *testing.T, s *registrytest.Server, method, path, token string, body any) (int, string)

func overSocket(t *testing.T, s *registrytest.Server, method, path, token string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func inProcess(t *testing.T, s *registrytest.Server, method, path, token string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(method, s.URL+path, strings.NewReader(string(b)))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestControlPlaneTable (issue 15): every built-in role at "/" and at a registry × every
// management action × targets holding nothing, less, as much as and more than the caller, as
// testdata/control-plane.txt says, through the real server over a socket and in-process.
func TestControlPlaneTable(t *testing.T) {
	tb := readControlPlane(t)
	if len(tb.roles) != 13 {
		t.Fatalf("the table lists %d roles; berth has 13 built-in roles", len(tb.roles))
	}
	for _, tr := range []struct {
		name string
		do   transport
	}{{"socket", overSocket}, {"in-process", inProcess}} {
		t.Run(tr.name, func(t *testing.T) {
			s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Federation.Issuers = []string{"https://issuer.example"} }})
			f := newCPFixture(t, s)
			cells, mismatches := 0, 0
			for _, role := range tb.roles {
				for _, scope := range []string{"/", "team"} {
					c := f.caller(role, scope)
					for _, a := range tb.actions {
						for _, target := range a.targets {
							want := tb.expect(c, a, target)
							st, body := f.act(t, tr.do, c, a.name, target)
							cells++
							got := ok(st)
							if st >= 500 || st == http.StatusBadRequest || got != want {
								mismatches++
								t.Errorf("%s at %s, %s, target %q: %d %s; the table says allowed=%v", role, scope, a.name, target, st, strings.TrimSpace(body), want)
							}
						}
					}
				}
			}
			t.Logf("%d cells, %d mismatches", cells, mismatches)
		})
	}
}

// cpFixture sets up callers and targets as the owner. Targets are kept and reused until an
// allowed action deletes them, and what an allowed action creates is deleted after it, so the
// directory stays small (every change reloads the policy snapshot).
type cpFixture struct {
	t       *testing.T
	s       *registrytest.Server
	n       int
	holders map[string]string // kind/target/caller role@scope → name or client id
	members map[string]bool   // group → its plain member is in it
	asgs    map[string]string // target role@scope → an assignment to delete
	tokens  map[string]string // "update", "delete" → a token
}

func newCPFixture(t *testing.T, s *registrytest.Server) *cpFixture {
	f := &cpFixture{t: t, s: s, holders: map[string]string{}, members: map[string]bool{}, asgs: map[string]string{}, tokens: map[string]string{}}
	f.owner("POST", "/mgmt/v1/registries", map[string]any{"name": "team"}, nil)
	return f
}

func (f *cpFixture) owner(method, path string, in, out any) {
	f.t.Helper()
	if st := f.s.Mgmt(f.t, method, path, in, out); st >= 300 {
		f.t.Fatalf("owner: %s %s: %d", method, path, st)
	}
}

func (f *cpFixture) name(prefix string) string {
	f.n++
	return fmt.Sprintf("%s%05d", prefix, f.n)
}

func (f *cpFixture) assign(assignee, role, scope string) string {
	f.t.Helper()
	var a struct{ ID string }
	f.owner("POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": assignee, "role": role, "scope": scopePath(scope)}, &a)
	return a.ID
}

func (f *cpFixture) user() string {
	f.t.Helper()
	u := f.name("u")
	f.owner("POST", "/mgmt/v1/users", map[string]string{"name": u, "password": "control-plane-password"}, nil)
	return u
}

// plain is a user holding no role of its own, one per purpose, shared by the cells that need
// one.
func (f *cpFixture) plain(purpose string) string {
	k := "plain/" + purpose
	if f.holders[k] == "" {
		f.holders[k] = f.user()
	}
	return f.holders[k]
}

func (f *cpFixture) caller(role, scope string) cpCaller {
	f.t.Helper()
	c := cpCaller{role: role, scope: scope, user: f.user()}
	f.assign(c.user, role, scope)
	c.token = registrytest.SignInAt(f.t, f.s.URL, c.user, "control-plane-password")
	return c
}

func holderKey(kind string, c cpCaller, target string) string {
	k := kind + "/" + target
	if target == "equal" {
		k += "/" + c.role + "@" + c.scope
	}
	return k
}

// holder is a user, service principal or group holding the target's roles.
func (f *cpFixture) holder(kind string, c cpCaller, target string) string {
	f.t.Helper()
	k := holderKey(kind, c, target)
	if id := f.holders[k]; id != "" {
		return id
	}
	var id string
	switch kind {
	case "user":
		id = f.user()
	case "sp":
		var sp struct{ AppID string }
		f.owner("POST", "/mgmt/v1/servicePrincipals", map[string]string{"displayName": f.name("sp")}, &sp)
		id = sp.AppID
	case "group":
		id = f.name("g")
		f.owner("POST", "/mgmt/v1/groups", map[string]string{"name": id}, nil)
	}
	for _, r := range targetRoles(c, target) {
		f.assign(id, r[0], r[1])
	}
	f.holders[k] = id
	return id
}

func ok(st int) bool { return st >= 200 && st < 300 }

// act sets up what the action needs (as the owner) and does it as the caller through do.
func (f *cpFixture) act(t *testing.T, do transport, c cpCaller, action, target string) (int, string) {
	t.Helper()
	as := func(method, path string, body any) (int, string) { return do(t, f.s, method, path, c.token, body) }
	// gone forgets a target an allowed action deleted.
	gone := func(st int, kind string) {
		if ok(st) {
			delete(f.holders, holderKey(kind, c, target))
		}
	}
	switch action {
	case "own-password":
		return as("PATCH", "/mgmt/v1/users/"+c.user, map[string]string{"password": "control-plane-password"})
	case "password-reset":
		return as("PATCH", "/mgmt/v1/users/"+f.holder("user", c, target), map[string]string{"password": "a-new-password-1234"})
	case "secret-reset":
		return as("POST", "/mgmt/v1/servicePrincipals/"+f.holder("sp", c, target)+"/credentials/reset", map[string]any{})
	case "federated-create":
		f.n++
		return as("POST", "/mgmt/v1/servicePrincipals/"+f.holder("sp", c, target)+"/federatedCredentials",
			map[string]any{"name": fmt.Sprintf("fic-%d", f.n), "issuer": "https://issuer.example", "subject": fmt.Sprintf("repo:o/r:ref:refs/heads/b%d", f.n)})
	case "member-add", "member-remove":
		g, u := f.holder("group", c, target), f.plain("member")
		if in := f.members[g]; in == (action == "member-add") {
			if in {
				f.owner("DELETE", "/mgmt/v1/groups/"+g+"/members/"+u, nil, nil)
			} else {
				f.owner("POST", "/mgmt/v1/groups/"+g+"/members", map[string]string{"user": u}, nil)
			}
			f.members[g] = !in
		}
		var st int
		var body string
		if action == "member-add" {
			st, body = as("POST", "/mgmt/v1/groups/"+g+"/members", map[string]string{"user": u})
		} else {
			st, body = as("DELETE", "/mgmt/v1/groups/"+g+"/members/"+u, nil)
		}
		if ok(st) {
			f.members[g] = action == "member-add"
		}
		return st, body
	case "user-delete":
		st, body := as("DELETE", "/mgmt/v1/users/"+f.holder("user", c, target), nil)
		gone(st, "user")
		return st, body
	case "sp-delete":
		st, body := as("DELETE", "/mgmt/v1/servicePrincipals/"+f.holder("sp", c, target), nil)
		gone(st, "sp")
		return st, body
	case "group-delete":
		st, body := as("DELETE", "/mgmt/v1/groups/"+f.holder("group", c, target), nil)
		if ok(st) {
			delete(f.members, f.holders[holderKey("group", c, target)])
		}
		gone(st, "group")
		return st, body
	case "assignment-create":
		r := targetRoles(c, target)[0]
		st, body := as("POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": f.plain("assignee"), "role": r[0], "scope": scopePath(r[1])})
		if ok(st) {
			var a struct{ ID string }
			if err := json.Unmarshal([]byte(body), &a); err != nil || a.ID == "" {
				t.Fatalf("created assignment: %s", body)
			}
			f.owner("DELETE", "/mgmt/v1/roleAssignments/"+a.ID, nil, nil)
		}
		return st, body
	case "assignment-delete":
		r := targetRoles(c, target)[0]
		k := r[0] + "@" + r[1]
		if f.asgs[k] == "" {
			f.asgs[k] = f.assign(f.plain("assigned"), r[0], r[1])
		}
		st, body := as("DELETE", "/mgmt/v1/roleAssignments/"+f.asgs[k], nil)
		if ok(st) {
			delete(f.asgs, k)
		}
		return st, body
	case "idp-create":
		return as("POST", "/mgmt/v1/identityProviders", map[string]any{"name": f.name("idp"), "issuer": "https://idp.example", "clientId": "berth"})
	case "registry-create":
		name := f.name("reg")
		st, body := as("POST", "/mgmt/v1/registries", map[string]string{"name": name})
		if ok(st) {
			f.owner("DELETE", "/mgmt/v1/registries/"+name, nil, nil)
		}
		return st, body
	case "registry-update":
		return as("PATCH", "/mgmt/v1/registries/team", map[string]any{"anonymousPullEnabled": false})
	case "admin-enable":
		return as("PATCH", "/mgmt/v1/registries/team", map[string]any{"adminUserEnabled": true})
	case "credential-names", "credential-list", "credential-renew":
		f.owner("PATCH", "/mgmt/v1/registries/team", map[string]any{"adminUserEnabled": true}, nil)
		switch action {
		case "credential-names":
			return as("GET", "/mgmt/v1/registries/team/credentials", nil)
		case "credential-list":
			st, body := as("POST", "/mgmt/v1/registries/team/listCredentials", nil)
			if ok(st) && !strings.Contains(body, `"value":"`) {
				t.Errorf("listCredentials answered %d without the values: %s", st, body)
			}
			return st, body
		}
		return as("POST", "/mgmt/v1/registries/team/credentials/renew", map[string]string{"name": "password2"})
	case "login-server":
		return as("PATCH", "/mgmt/v1/registries/team", map[string]any{"loginServer": f.name("team") + ".example"})
	case "token-create":
		name := f.name("tok")
		st, body := as("POST", "/mgmt/v1/registries/team/tokens", map[string]string{"name": name, "scopeMap": "_repositories_pull"})
		if ok(st) {
			f.owner("DELETE", "/mgmt/v1/registries/team/tokens/"+name, nil, nil)
		}
		return st, body
	case "token-update", "token-delete":
		if f.tokens[action] == "" {
			f.tokens[action] = f.name("tok")
			f.owner("POST", "/mgmt/v1/registries/team/tokens", map[string]string{"name": f.tokens[action], "scopeMap": "_repositories_pull"}, nil)
		}
		if action == "token-update" {
			return as("PATCH", "/mgmt/v1/registries/team/tokens/"+f.tokens[action], map[string]string{"status": "disabled"})
		}
		st, body := as("DELETE", "/mgmt/v1/registries/team/tokens/"+f.tokens[action], nil)
		if ok(st) {
			delete(f.tokens, action)
		}
		return st, body
	case "scopemap-create":
		name := f.name("map")
		st, body := as("POST", "/mgmt/v1/registries/team/scopeMaps", map[string]any{"name": name,
			"repositories": []map[string]any{{"repository": "app", "actions": []string{"content/read"}}}})
		if ok(st) {
			f.owner("DELETE", "/mgmt/v1/registries/team/scopeMaps/"+name, nil, nil)
		}
		return st, body
	case "permissions":
		return as("GET", "/mgmt/v1/registries/team/permissions?repository=app", nil)
	case "explain-self", "explain-other":
		who := c.user
		if action == "explain-other" {
			who = "owner"
		}
		return as("GET", "/mgmt/v1/registries/team/explain?"+url.Values{"identity": {who}, "action": {"pull"}, "repository": {"app"}}.Encode(), nil)
	}
	t.Fatalf("the test does not know action %q of the table", action)
	return 0, ""
}
