package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/authn"
)

// scopeMapActions are the repository actions a scope map may give, as az names them.
var scopeMapActions = []string{"content/read", "content/write", "content/delete", "metadata/read", "metadata/write"}

type tokensData struct {
	Tokens    []client.Token
	ScopeMaps []client.ScopeMap
	Actions   []string
	// Created is a token whose passwords were just generated: shown once.
	Created *client.Token
}

func (h *Handler) tokensPage(x *call, created *client.Token) error {
	d := tokensData{Actions: scopeMapActions, Created: created}
	if x.v.Can("registries/credentials/read") {
		var err error
		if d.Tokens, err = x.c.Tokens(x.ctx, x.v.Registry.Name); err != nil {
			return err
		}
		if d.ScopeMaps, err = x.c.ScopeMaps(x.ctx, x.v.Registry.Name); err != nil {
			return err
		}
	}
	return h.page(x, "tokens", "tokens", "Tokens and scope maps", d)
}

func (h *Handler) tokens(x *call) error { return h.tokensPage(x, nil) }

// repositoryActions reads the form's repository rows (repository1…3 with their action boxes).
func repositoryActions(f url.Values) []client.RepositoryActions {
	var out []client.RepositoryActions
	for i := 1; i <= 3; i++ {
		n := strconv.Itoa(i)
		repo := strings.TrimSpace(f.Get("repository" + n))
		if repo == "" {
			continue
		}
		ra := client.RepositoryActions{Repository: repo}
		for _, a := range f["actions"+n] {
			ra.Actions = append(ra.Actions, a)
		}
		out = append(out, ra)
	}
	return out
}

func days(f url.Values, key string) (int, error) {
	v := strings.TrimSpace(f.Get(key))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &client.Error{Status: http.StatusBadRequest, Message: key + " must be a whole number of days"}
	}
	return n, nil
}

func (h *Handler) createToken(x *call) (string, error) {
	f := x.r.PostForm
	exp, err := days(f, "expiryInDays")
	if err != nil {
		return "", err
	}
	t := client.TokenCreate{Name: strings.TrimSpace(f.Get("name")), ExpiryInDays: exp}
	if m := f.Get("scopeMap"); m != "" {
		t.ScopeMap = &m
	} else {
		t.Repositories = repositoryActions(f)
	}
	if f.Get("disabled") == "true" {
		s := "disabled"
		t.Status = &s
	}
	tok, err := x.c.CreateToken(x.ctx, x.v.Registry.Name, t)
	if err != nil {
		return "", err
	}
	x.v.Notice = "The token " + tok.Name + " was created. Its passwords are shown on this page only: copy them now."
	return "", h.tokensPage(x, &tok)
}

func (h *Handler) tokenPassword(x *call) (string, error) {
	f := x.r.PostForm
	exp, err := days(f, "expiryInDays")
	if err != nil {
		return "", err
	}
	which := f.Get("password")
	req := client.TokenCredentials{Password1: which == "password1", Password2: which == "password2", ExpiryInDays: exp}
	tok, err := x.c.GenerateTokenCredentials(x.ctx, x.v.Registry.Name, f.Get("token"), req)
	if err != nil {
		return "", err
	}
	x.v.Notice = "New passwords of " + tok.Name + " are shown on this page only: copy them now."
	return "", h.tokensPage(x, &tok)
}

func (h *Handler) tokenStatus(x *call) (string, error) {
	s := "enabled"
	if x.r.PostForm.Get("enabled") != "true" {
		s = "disabled"
	}
	_, err := x.c.UpdateToken(x.ctx, x.v.Registry.Name, x.r.PostForm.Get("token"), client.TokenUpdate{Status: &s})
	return "token-updated", err
}

func (h *Handler) deleteToken(x *call) (string, error) {
	return "token-deleted", x.c.DeleteToken(x.ctx, x.v.Registry.Name, x.r.PostForm.Get("token"))
}

func (h *Handler) createScopeMap(x *call) (string, error) {
	f := x.r.PostForm
	m := client.ScopeMapCreate{Name: strings.TrimSpace(f.Get("name")), Description: f.Get("description"), Repositories: repositoryActions(f)}
	_, err := x.c.CreateScopeMap(x.ctx, x.v.Registry.Name, m)
	return "map-created", err
}

func (h *Handler) deleteScopeMap(x *call) (string, error) {
	return "map-deleted", x.c.DeleteScopeMap(x.ctx, x.v.Registry.Name, x.r.PostForm.Get("map"))
}

type accessData struct {
	Assignments []client.RoleAssignment
	Roles       []client.RoleDefinition
	Scope       string
	// Check is the "Check access" form's question and answer.
	Check        checkForm
	Explanation  *client.Explanation
	CheckErr     *client.Error
	CheckActions []string
}

type checkForm struct {
	Identity, Repository, Action, IP string
}

var checkActions = []string{"pull", "push", "delete", "metadata_read", "metadata_write", "catalog"}

func (h *Handler) accessPage(x *call, d accessData) error {
	d.Scope = "/registries/" + x.v.Registry.Name
	d.CheckActions = checkActions
	if x.v.Can("roleAssignments/read") {
		all, err := x.c.RoleAssignments(x.ctx, client.RoleAssignmentFilter{})
		if err != nil {
			return err
		}
		for _, a := range all {
			if a.Scope == "/" || a.Scope == d.Scope {
				d.Assignments = append(d.Assignments, a)
			}
		}
	}
	roles, err := x.c.RoleDefinitions(x.ctx)
	if err != nil {
		return err
	}
	d.Roles = roles
	if d.Check.Identity == "" {
		d.Check.Identity = x.v.Me.Name
	}
	if d.Check.Action == "" {
		d.Check.Action = "pull"
	}
	return h.page(x, "access", "access", "Access control", d)
}

func (h *Handler) accessControl(x *call) error { return h.accessPage(x, accessData{}) }

// checkAccess is berth explain as a form: the decision for an identity, a repository, an action
// and an address, with every rule the policy considered.
func (h *Handler) checkAccess(x *call) error {
	q := x.r.URL.Query()
	d := accessData{Check: checkForm{Identity: q.Get("identity"), Repository: q.Get("repository"), Action: q.Get("action"), IP: q.Get("ip")}}
	if d.Check.IP == "mine" {
		d.Check.IP = authn.ClientIP(x.r)
	}
	e, err := x.c.Explain(x.ctx, client.ExplainRequest{Registry: x.v.Registry.Name, Identity: d.Check.Identity, Repository: d.Check.Repository,
		Action: d.Check.Action, IP: d.Check.IP})
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status != http.StatusUnauthorized {
		d.CheckErr = ce
	} else if err != nil {
		return err
	} else {
		d.Explanation = &e
	}
	return h.accessPage(x, d)
}

func (h *Handler) assign(x *call) (string, error) {
	f := x.r.PostForm
	a := client.RoleAssignmentCreate{Assignee: strings.TrimSpace(f.Get("assignee")), Role: f.Get("role"), Scope: f.Get("scope"),
		Condition: strings.TrimSpace(f.Get("condition"))}
	if prefix := strings.TrimSpace(f.Get("repositoryPrefix")); prefix != "" && a.Condition == "" {
		a.Condition = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase '" + strings.ReplaceAll(prefix, "'", "") + "'"
	}
	if a.Condition != "" {
		a.ConditionVersion = "2.0"
	}
	_, err := x.c.CreateRoleAssignment(x.ctx, a)
	return "assigned", err
}

func (h *Handler) unassign(x *call) (string, error) {
	return "unassigned", x.c.DeleteRoleAssignment(x.ctx, x.r.PostForm.Get("id"))
}
