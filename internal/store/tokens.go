package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ScopeRule grants one action on the repositories a pattern matches.
type ScopeRule struct {
	Repository string // a name, a prefix ending in "/*", or "*"
	Action     string // content/read, content/write, content/delete, metadata/read, metadata/write
}

// ScopeMap is a named set of rules of one registry.
type ScopeMap struct {
	ID          int64
	RegistryID  int64
	Name        string
	Description string
	System      bool
	Rules       []ScopeRule
	CreatedAt   time.Time
}

func systemMap(name, desc string, actions ...string) ScopeMap {
	m := ScopeMap{Name: name, Description: desc, System: true}
	for _, a := range actions {
		m.Rules = append(m.Rules, ScopeRule{Repository: "*", Action: a})
	}
	return m
}

// SystemScopeMaps are the scope maps every registry has, as in ACR.
var SystemScopeMaps = []ScopeMap{
	systemMap("_repositories_admin", "Can perform all read, write and delete operations on the registry",
		"content/delete", "content/read", "content/write", "metadata/read", "metadata/write"),
	systemMap("_repositories_pull", "Can pull any repository of the registry", "content/read"),
	systemMap("_repositories_pull_metadata_read", "Can perform all read operations on the registry", "content/read", "metadata/read"),
	systemMap("_repositories_push", "Can push to any repository of the registry", "content/read", "content/write"),
	systemMap("_repositories_push_metadata_write", "Can perform all read and write operations on the registry",
		"content/read", "content/write", "metadata/read", "metadata/write"),
}

// Token is a repository-scoped token of a registry.
type Token struct {
	ID         int64
	RegistryID int64
	Name       string
	ScopeMapID int64  // 0: none
	ScopeMap   string // its name
	Status     string // enabled or disabled
	CreatedAt  time.Time
}

func (s *Store) insertScopeMap(ctx context.Context, tx *sql.Tx, registryID int64, m ScopeMap) (int64, error) {
	id, err := s.insertRow(ctx, tx, "scope_maps", "registry_id, name, description, system, created_at",
		registryID, m.Name, m.Description, boolInt(m.System), s.millis())
	if err != nil {
		return 0, err
	}
	return id, s.insertRules(ctx, tx, id, m.Rules)
}

func (s *Store) insertRules(ctx context.Context, tx *sql.Tx, mapID int64, rules []ScopeRule) error {
	for _, r := range rules {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO scope_map_rules (scope_map_id, repository, action) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`),
			mapID, r.Repository, r.Action); err != nil {
			return err
		}
	}
	return nil
}

// CreateScopeMap adds a user-defined scope map.
func (s *Store) CreateScopeMap(ctx context.Context, registryID int64, m ScopeMap) (ScopeMap, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, err := s.insertScopeMap(ctx, tx, registryID, m)
		if err != nil {
			return err
		}
		m.ID, m.RegistryID = id, registryID
		return s.bump(ctx, tx)
	})
	if err != nil {
		return ScopeMap{}, fmt.Errorf("store: create scope map %q: %w", m.Name, s.classify(err))
	}
	return s.ScopeMap(ctx, registryID, m.Name)
}

// ScopeMap returns a scope map with its rules, or ErrNotFound.
func (s *Store) ScopeMap(ctx context.Context, registryID int64, name string) (ScopeMap, error) {
	maps, err := s.scopeMaps(ctx, `WHERE m.registry_id = ? AND m.name = ?`, registryID, name)
	if err != nil {
		return ScopeMap{}, err
	}
	if len(maps) == 0 {
		return ScopeMap{}, fmt.Errorf("scope map %q: %w", name, ErrNotFound)
	}
	return maps[0], nil
}

// ScopeMaps lists a registry's scope maps by name; registryID 0 lists every registry's.
func (s *Store) ScopeMaps(ctx context.Context, registryID int64) ([]ScopeMap, error) {
	if registryID == 0 {
		return s.scopeMaps(ctx, ``)
	}
	return s.scopeMaps(ctx, `WHERE m.registry_id = ?`, registryID)
}

func (s *Store) scopeMaps(ctx context.Context, where string, args ...any) ([]ScopeMap, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT m.id, m.registry_id, m.name, m.description, m.system, m.created_at, COALESCE(r.repository, ''), COALESCE(r.action, '')
		FROM scope_maps m LEFT JOIN scope_map_rules r ON r.scope_map_id = m.id `+where+` ORDER BY m.registry_id, m.name, r.repository, r.action`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: scope maps: %w", err)
	}
	defer rows.Close()
	var out []ScopeMap
	for rows.Next() {
		var m ScopeMap
		var sys int
		var created int64
		var rule ScopeRule
		if err := rows.Scan(&m.ID, &m.RegistryID, &m.Name, &m.Description, &sys, &created, &rule.Repository, &rule.Action); err != nil {
			return nil, fmt.Errorf("store: scope maps: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].ID != m.ID {
			m.System, m.CreatedAt = sys == 1, time.UnixMilli(created)
			out = append(out, m)
		}
		if rule.Action != "" {
			out[len(out)-1].Rules = append(out[len(out)-1].Rules, rule)
		}
	}
	return out, rows.Err()
}

// UpdateScopeMap replaces a user-defined map's description (when non-nil) and rules.
func (s *Store) UpdateScopeMap(ctx context.Context, registryID int64, name string, description *string, rules []ScopeRule) (ScopeMap, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, err := s.userScopeMapID(ctx, tx, registryID, name)
		if err != nil {
			return err
		}
		if description != nil {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE scope_maps SET description = ? WHERE id = ?`), *description, id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM scope_map_rules WHERE scope_map_id = ?`), id); err != nil {
			return err
		}
		if err := s.insertRules(ctx, tx, id, rules); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return ScopeMap{}, fmt.Errorf("store: update scope map %q: %w", name, err)
	}
	return s.ScopeMap(ctx, registryID, name)
}

// DeleteScopeMap removes a user-defined scope map no token uses.
func (s *Store) DeleteScopeMap(ctx context.Context, registryID int64, name string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, err := s.userScopeMapID(ctx, tx, registryID, name)
		if err != nil {
			return err
		}
		users, err := queryAll(ctx, tx, s.q(`SELECT name FROM tokens WHERE scope_map_id = ? ORDER BY name`), []any{id}, func(sc scanner) (string, error) {
			var n string
			return n, sc.Scan(&n)
		})
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%w: scope map %q is used by token(s) %s", ErrConflict, name, strings.Join(users, ", "))
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM scope_maps WHERE id = ?`), id); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: delete scope map %q: %w", name, err)
	}
	return nil
}

// ErrSystemScopeMap refuses changes to the system-defined scope maps.
var ErrSystemScopeMap = errors.New("store: system-defined scope maps cannot be changed")

func (s *Store) userScopeMapID(ctx context.Context, tx *sql.Tx, registryID int64, name string) (int64, error) {
	var id int64
	var sys int
	err := tx.QueryRowContext(ctx, s.q(`SELECT id, system FROM scope_maps WHERE registry_id = ? AND name = ?`), registryID, name).Scan(&id, &sys)
	if err != nil {
		return 0, notFound(fmt.Sprintf("scope map %q", name), err)
	}
	if sys == 1 {
		return 0, fmt.Errorf("%w (%s)", ErrSystemScopeMap, name)
	}
	return id, nil
}

const tokenQuery = `SELECT t.id, t.registry_id, t.name, COALESCE(t.scope_map_id, 0), COALESCE(m.name, ''), t.status, t.created_at
	FROM tokens t LEFT JOIN scope_maps m ON m.id = t.scope_map_id `

func scanToken(sc scanner) (Token, error) {
	var t Token
	var created int64
	err := sc.Scan(&t.ID, &t.RegistryID, &t.Name, &t.ScopeMapID, &t.ScopeMap, &t.Status, &created)
	t.CreatedAt = time.UnixMilli(created)
	return t, err
}

// CreateToken adds a token bound to the scope map of that name (empty: none) with its secrets.
// A non-nil newMap is created first, in the same transaction, and becomes the token's map.
func (s *Store) CreateToken(ctx context.Context, registryID int64, t Token, newMap *ScopeMap, secrets []Secret) (Token, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var mapID any
		switch {
		case newMap != nil:
			id, err := s.insertScopeMap(ctx, tx, registryID, *newMap)
			if err != nil {
				return err
			}
			mapID = id
		case t.ScopeMap != "":
			var id int64
			if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM scope_maps WHERE registry_id = ? AND name = ?`), registryID, t.ScopeMap).Scan(&id); err != nil {
				return notFound(fmt.Sprintf("scope map %q", t.ScopeMap), err)
			}
			mapID = id
		}
		id, err := s.insertRow(ctx, tx, "tokens", "registry_id, name, scope_map_id, status, created_at",
			registryID, t.Name, mapID, t.Status, s.millis())
		if err != nil {
			return err
		}
		for _, sec := range secrets {
			if err := s.putSecret(ctx, tx, KindToken, id, sec); err != nil {
				return err
			}
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return Token{}, fmt.Errorf("store: create token %q: %w", t.Name, s.classify(err))
	}
	return s.Token(ctx, registryID, t.Name)
}

// Token returns a registry's token by name, or ErrNotFound.
func (s *Store) Token(ctx context.Context, registryID int64, name string) (Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, s.q(tokenQuery+`WHERE t.registry_id = ? AND t.name = ?`), registryID, name))
	if err != nil {
		return Token{}, notFound(fmt.Sprintf("token %q", name), err)
	}
	return t, nil
}

// Tokens lists a registry's tokens by name; registryID 0 lists every registry's.
func (s *Store) Tokens(ctx context.Context, registryID int64) ([]Token, error) {
	if registryID == 0 {
		return queryAll(ctx, s.r, tokenQuery+`ORDER BY t.registry_id, t.name`, nil, scanToken)
	}
	return queryAll(ctx, s.r, s.q(tokenQuery+`WHERE t.registry_id = ? ORDER BY t.name`), []any{registryID}, scanToken)
}

// TokenUpdate holds the changes to a token; nil fields stay as they are. An empty ScopeMap
// detaches the token from its map.
type TokenUpdate struct {
	Status   *string
	ScopeMap *string
}

// UpdateToken changes a token's status or scope map.
func (s *Store) UpdateToken(ctx context.Context, registryID int64, name string, u TokenUpdate) (Token, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if u.Status != nil {
			if err := s.execOne(ctx, tx, `UPDATE tokens SET status = ? WHERE registry_id = ? AND name = ?`, *u.Status, registryID, name); err != nil {
				return err
			}
		}
		if u.ScopeMap != nil {
			var mapID any
			if *u.ScopeMap != "" {
				var id int64
				if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM scope_maps WHERE registry_id = ? AND name = ?`), registryID, *u.ScopeMap).Scan(&id); err != nil {
					return notFound(fmt.Sprintf("scope map %q", *u.ScopeMap), err)
				}
				mapID = id
			}
			if err := s.execOne(ctx, tx, `UPDATE tokens SET scope_map_id = ? WHERE registry_id = ? AND name = ?`, mapID, registryID, name); err != nil {
				return err
			}
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return Token{}, fmt.Errorf("store: update token %q: %w", name, err)
	}
	return s.Token(ctx, registryID, name)
}

// DeleteToken removes a token and its secrets.
func (s *Store) DeleteToken(ctx context.Context, registryID int64, name string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM tokens WHERE registry_id = ? AND name = ?`), registryID, name).Scan(&id); err != nil {
			return notFound(fmt.Sprintf("token %q", name), err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM secrets WHERE owner_kind = 'token' AND owner_id = ?`), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM tokens WHERE id = ?`), id); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: delete token %q: %w", name, err)
	}
	return nil
}
