package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Registry is one registry hosted by the server.
type Registry struct {
	ID           int64
	Name         string
	LoginServer  string // host[:port] clients use; empty for none
	Default      bool   // answers requests for hosts no registry claims
	AdminEnabled bool
	// RoleAssignmentMode is ModeRBAC or ModeRBACABAC.
	RoleAssignmentMode string
	// AnonymousPullEnabled lets clients without credentials pull every repository;
	// AnonymousPullRepositories lets them pull the listed names and "prefix/*" patterns.
	AnonymousPullEnabled      bool
	AnonymousPullRepositories []string
	// PublicNetworkAccess off refuses every client; DefaultAction Deny refuses the addresses no
	// network rule allows.
	PublicNetworkAccess bool
	DefaultAction       string
	NetworkRules        []NetworkRule
	CreatedAt           time.Time
	// Retention deletes untagged manifests Days after they lost their last tag; SoftDelete keeps
	// deleted manifests, restorable, for Days.
	Retention, SoftDelete ContentPolicy
}

// DefaultPolicyDays is the days of a new registry's retention and soft-delete policies (off).
const DefaultPolicyDays = 7

// ContentPolicy is a registry's retention or soft-delete policy.
type ContentPolicy struct {
	Enabled   bool
	Days      int
	UpdatedAt time.Time // zero: never changed
}

// The role assignment modes.
const (
	ModeRBAC     = "rbac"
	ModeRBACABAC = "rbac-abac"
)

// The network default actions.
const (
	ActionAllow = "Allow"
	ActionDeny  = "Deny"
)

// MaxNetworkRules is how many IP rules a registry may have, as in ACR.
const MaxNetworkRules = 200

// NetworkRule allows the addresses of a CIDR (a single address is a /32 or /128).
type NetworkRule struct {
	Value     string // canonical CIDR
	Action    string // Allow
	CreatedAt time.Time
}

const registryColumns = `id, name, COALESCE(login_server, ''), is_default, admin_enabled, role_assignment_mode,
	anonymous_pull_enabled, anonymous_pull_repositories, public_network_access, default_action, created_at,
	retention_enabled, retention_days, retention_updated_at, soft_delete_enabled, soft_delete_days, soft_delete_updated_at`

// EnsureDefaultRegistry returns the default registry, creating it with the given name on an
// empty database.
func (s *Store) EnsureDefaultRegistry(ctx context.Context, name string) (Registry, error) {
	var r Registry
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := scanRegistry(tx.QueryRowContext(ctx, `SELECT `+registryColumns+` FROM registries WHERE is_default = 1`), &r)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		r, err = s.createRegistry(ctx, tx, name, "", true)
		return err
	})
	if err != nil {
		return Registry{}, fmt.Errorf("store: default registry: %w", err)
	}
	return r, nil
}

// CreateRegistry adds a registry answering for loginServer (may be empty), with the system
// scope maps every registry has.
func (s *Store) CreateRegistry(ctx context.Context, name, loginServer string) (Registry, error) {
	var r Registry
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		r, err = s.createRegistry(ctx, tx, name, loginServer, false)
		return err
	})
	if err != nil {
		return Registry{}, fmt.Errorf("store: create registry %q: %w", name, s.classify(err))
	}
	return r, nil
}

func (s *Store) createRegistry(ctx context.Context, tx *sql.Tx, name, loginServer string, def bool) (Registry, error) {
	var ls any
	if loginServer != "" {
		ls = strings.ToLower(loginServer)
		if err := s.hostFree(ctx, tx, name, loginServer); err != nil {
			return Registry{}, err
		}
	}
	now := s.millis()
	id, err := s.insertRow(ctx, tx, "registries", "name, login_server, is_default, created_at", name, ls, boolInt(def), now)
	if err != nil {
		return Registry{}, err
	}
	for _, m := range SystemScopeMaps {
		if _, err := s.insertScopeMap(ctx, tx, id, m); err != nil {
			return Registry{}, err
		}
	}
	if err := s.bump(ctx, tx); err != nil {
		return Registry{}, err
	}
	return Registry{ID: id, Name: name, LoginServer: strings.ToLower(loginServer), Default: def, RoleAssignmentMode: ModeRBAC,
		PublicNetworkAccess: true, DefaultAction: ActionAllow, CreatedAt: time.UnixMilli(now),
		Retention: ContentPolicy{Days: DefaultPolicyDays}, SoftDelete: ContentPolicy{Days: DefaultPolicyDays}}, nil
}

// RegistryByName returns the named registry, or ErrNotFound.
func (s *Store) RegistryByName(ctx context.Context, name string) (Registry, error) {
	var r Registry
	err := scanRegistry(s.r.QueryRowContext(ctx, s.q(`SELECT `+registryColumns+` FROM registries WHERE name = ?`), name), &r)
	if errors.Is(err, sql.ErrNoRows) {
		return Registry{}, ErrNotFound
	}
	if err != nil {
		return Registry{}, fmt.Errorf("store: registry %q: %w", name, err)
	}
	if r.NetworkRules, err = s.networkRules(ctx, r.ID); err != nil {
		return Registry{}, err
	}
	return r, nil
}

// Registries lists every registry, by name.
func (s *Store) Registries(ctx context.Context) ([]Registry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+registryColumns+` FROM registries ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: registries: %w", err)
	}
	defer rows.Close()
	var out []Registry
	for rows.Next() {
		var r Registry
		if err := scanRegistry(rows, &r); err != nil {
			return nil, fmt.Errorf("store: registries: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: registries: %w", err)
	}
	rules, err := s.allNetworkRules(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].NetworkRules = rules[out[i].ID]
	}
	return out, nil
}

// RegistryUpdate holds the settings to change; nil fields stay as they are.
type RegistryUpdate struct {
	LoginServer               *string
	AdminEnabled              *bool
	RoleAssignmentMode        *string
	AnonymousPullEnabled      *bool
	AnonymousPullRepositories *[]string
	PublicNetworkAccess       *bool
	DefaultAction             *string
	// The retention and soft-delete policies; nil fields stay.
	RetentionEnabled, SoftDeleteEnabled *bool
	RetentionDays, SoftDeleteDays       *int
}

// UpdateRegistry changes a registry's settings and returns it.
func (s *Store) UpdateRegistry(ctx context.Context, name string, u RegistryUpdate) (Registry, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if u.LoginServer != nil {
			var ls any
			if *u.LoginServer != "" {
				ls = strings.ToLower(*u.LoginServer)
				if err := s.hostFree(ctx, tx, name, *u.LoginServer); err != nil {
					return err
				}
			}
			if err := s.execOne(ctx, tx, `UPDATE registries SET login_server = ? WHERE name = ?`, ls, name); err != nil {
				return err
			}
		}
		set := func(column string, v any) error {
			return s.execOne(ctx, tx, `UPDATE registries SET `+column+` = ? WHERE name = ?`, v, name)
		}
		for _, c := range []struct {
			column string
			set    bool
			value  func() any
		}{
			{"admin_enabled", u.AdminEnabled != nil, func() any { return boolInt(*u.AdminEnabled) }},
			{"role_assignment_mode", u.RoleAssignmentMode != nil, func() any { return *u.RoleAssignmentMode }},
			{"anonymous_pull_enabled", u.AnonymousPullEnabled != nil, func() any { return boolInt(*u.AnonymousPullEnabled) }},
			{"anonymous_pull_repositories", u.AnonymousPullRepositories != nil, func() any { return strings.Join(*u.AnonymousPullRepositories, " ") }},
			{"public_network_access", u.PublicNetworkAccess != nil, func() any { return boolInt(*u.PublicNetworkAccess) }},
			{"default_action", u.DefaultAction != nil, func() any { return *u.DefaultAction }},
			{"retention_enabled", u.RetentionEnabled != nil, func() any { return boolInt(*u.RetentionEnabled) }},
			{"retention_days", u.RetentionDays != nil, func() any { return *u.RetentionDays }},
			{"retention_updated_at", u.RetentionEnabled != nil || u.RetentionDays != nil, func() any { return s.millis() }},
			{"soft_delete_enabled", u.SoftDeleteEnabled != nil, func() any { return boolInt(*u.SoftDeleteEnabled) }},
			{"soft_delete_days", u.SoftDeleteDays != nil, func() any { return *u.SoftDeleteDays }},
			{"soft_delete_updated_at", u.SoftDeleteEnabled != nil || u.SoftDeleteDays != nil, func() any { return s.millis() }},
		} {
			if c.set {
				if err := set(c.column, c.value()); err != nil {
					return err
				}
			}
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return Registry{}, fmt.Errorf("store: update registry %q: %w", name, s.classify(err))
	}
	return s.RegistryByName(ctx, name)
}

// DeleteRegistry removes a registry with its content metadata, tokens and scope maps. The
// default registry cannot be deleted.
func (s *Store) DeleteRegistry(ctx context.Context, name string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var r Registry
		err := scanRegistry(tx.QueryRowContext(ctx, s.q(`SELECT `+registryColumns+` FROM registries WHERE name = ?`), name), &r)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if r.Default {
			return fmt.Errorf("%w: the default registry cannot be deleted", ErrConflict)
		}
		for _, q := range []string{
			`DELETE FROM secrets WHERE owner_kind = 'token' AND owner_id IN (SELECT id FROM tokens WHERE registry_id = ?)`,
			`DELETE FROM secrets WHERE owner_kind = 'admin' AND owner_id = ?`,
			`DELETE FROM tokens WHERE registry_id = ?`,
			`DELETE FROM uploads WHERE registry_id = ?`,
			`DELETE FROM registries WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.q(q), r.ID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM role_assignments WHERE scope = ?`), "/registries/"+r.Name); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: delete registry %q: %w", name, err)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func scanRegistry(sc scanner, r *Registry) error {
	var def, admin, anon, public int
	var created, retOn, retDays, retAt, sdOn, sdDays, sdAt int64
	var repos string
	if err := sc.Scan(&r.ID, &r.Name, &r.LoginServer, &def, &admin, &r.RoleAssignmentMode, &anon, &repos, &public, &r.DefaultAction, &created,
		&retOn, &retDays, &retAt, &sdOn, &sdDays, &sdAt); err != nil {
		return err
	}
	r.Retention = ContentPolicy{Enabled: retOn == 1, Days: int(retDays)}
	r.SoftDelete = ContentPolicy{Enabled: sdOn == 1, Days: int(sdDays)}
	if retAt > 0 {
		r.Retention.UpdatedAt = time.UnixMilli(retAt)
	}
	if sdAt > 0 {
		r.SoftDelete.UpdatedAt = time.UnixMilli(sdAt)
	}
	r.Default, r.AdminEnabled, r.CreatedAt = def == 1, admin == 1, time.UnixMilli(created)
	r.AnonymousPullEnabled, r.PublicNetworkAccess = anon == 1, public == 1
	if repos != "" {
		r.AnonymousPullRepositories = strings.Fields(repos)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// loginHost is the host of a login server, without its port, in lower case: what two registries
// may not share (a client that reaches one host on another port must not land elsewhere).
func loginHost(loginServer string) string {
	ls := strings.ToLower(loginServer)
	if h, _, err := net.SplitHostPort(ls); err == nil {
		return h
	}
	return strings.Trim(ls, "[]")
}

// hostFree fails with ErrConflict when another registry than name answers for the host of
// loginServer, on any port. It runs in the write transaction, so two changes cannot both pass.
func (s *Store) hostFree(ctx context.Context, tx *sql.Tx, name, loginServer string) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT name, login_server FROM registries WHERE login_server IS NOT NULL AND name <> ?`), name)
	if err != nil {
		return err
	}
	defer rows.Close()
	host := loginHost(loginServer)
	for rows.Next() {
		var other, ls string
		if err := rows.Scan(&other, &ls); err != nil {
			return err
		}
		if loginHost(ls) == host {
			return fmt.Errorf("%w: registry %s already answers for host %s (login server %s)", ErrConflict, other, host, ls)
		}
	}
	return rows.Err()
}
