package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrExists means a row with the same name already exists.
var ErrExists = errors.New("store: already exists")

// Principal kinds, as stored in secrets and role assignments.
const (
	KindUser  = "user"
	KindGroup = "group"
	KindSP    = "sp"
	KindAdmin = "admin"
	KindToken = "token"
)

// User is a directory user.
type User struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	// SSOOnly users sign in with single sign-on only: a password sign-in is refused.
	SSOOnly bool
}

// Group is a directory group.
type Group struct {
	ID          int64
	Name        string
	Description string
	CreatedAt   time.Time
}

// ServicePrincipal is a directory application identity.
type ServicePrincipal struct {
	ID          int64
	AppID       string
	DisplayName string
	CreatedAt   time.Time
}

// Secret is a hashed password of an identity. A zero ExpiresAt never expires.
type Secret struct {
	Name      string
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time
	// Sealed is the value encrypted with the key-encryption key, for the secrets berth must show
	// again (the admin user's passwords); nil for the others.
	Sealed []byte
}

// CreateUser adds a user with its password hash.
func (s *Store) CreateUser(ctx context.Context, name, hash string) (User, error) {
	u := User{Name: name, CreatedAt: time.UnixMilli(s.millis())}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if u.ID, err = s.insertRow(ctx, tx, "users", "name, created_at", name, u.CreatedAt.UnixMilli()); err != nil {
			return err
		}
		if err := s.bump(ctx, tx); err != nil {
			return err
		}
		return s.putSecret(ctx, tx, KindUser, u.ID, Secret{Name: "password", Hash: hash})
	})
	if err != nil {
		return User{}, fmt.Errorf("store: create user %q: %w", name, s.classify(err))
	}
	return u, nil
}

// UserByName returns the named user, or ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	var u User
	var created, only int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, name, created_at, sso_only FROM users WHERE name = ?`), name).Scan(&u.ID, &u.Name, &created, &only)
	if err != nil {
		return User{}, notFound(fmt.Sprintf("user %q", name), err)
	}
	u.CreatedAt, u.SSOOnly = time.UnixMilli(created), only == 1
	return u, nil
}

// UserByID returns the user with that id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	var u User
	var created, only int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, name, created_at, sso_only FROM users WHERE id = ?`), id).Scan(&u.ID, &u.Name, &created, &only)
	if err != nil {
		return User{}, notFound(fmt.Sprintf("user %d", id), err)
	}
	u.CreatedAt, u.SSOOnly = time.UnixMilli(created), only == 1
	return u, nil
}

// Users lists the users by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	return queryAll(ctx, s.r, `SELECT id, name, created_at, sso_only FROM users ORDER BY name`, nil, func(sc scanner) (User, error) {
		var u User
		var created, only int64
		err := sc.Scan(&u.ID, &u.Name, &created, &only)
		u.CreatedAt, u.SSOOnly = time.UnixMilli(created), only == 1
		return u, err
	})
}

// CountUsers returns how many users exist.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count users: %w", err)
	}
	return n, nil
}

// DeleteUser removes a user with its secrets, memberships and role assignments.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.deleteIdentity(ctx, KindUser, `SELECT id FROM users WHERE name = ?`, `DELETE FROM users WHERE id = ?`, name)
}

// CreateGroup adds a group.
func (s *Store) CreateGroup(ctx context.Context, name, description string) (Group, error) {
	g := Group{Name: name, Description: description, CreatedAt: time.UnixMilli(s.millis())}
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		g.ID, err = s.insertRow(ctx, tx, "groups", "name, description, created_at", name, description, g.CreatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return Group{}, fmt.Errorf("store: create group %q: %w", name, s.classify(err))
	}
	return g, nil
}

// GroupByName returns the named group, or ErrNotFound.
func (s *Store) GroupByName(ctx context.Context, name string) (Group, error) {
	var g Group
	var created int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, name, description, created_at FROM groups WHERE name = ?`), name).Scan(&g.ID, &g.Name, &g.Description, &created)
	if err != nil {
		return Group{}, notFound(fmt.Sprintf("group %q", name), err)
	}
	g.CreatedAt = time.UnixMilli(created)
	return g, nil
}

// Groups lists the groups by name.
func (s *Store) Groups(ctx context.Context) ([]Group, error) {
	return queryAll(ctx, s.r, `SELECT id, name, description, created_at FROM groups ORDER BY name`, nil, func(sc scanner) (Group, error) {
		var g Group
		var created int64
		err := sc.Scan(&g.ID, &g.Name, &g.Description, &created)
		g.CreatedAt = time.UnixMilli(created)
		return g, err
	})
}

// DeleteGroup removes a group, its memberships and role assignments.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.deleteIdentity(ctx, KindGroup, `SELECT id FROM groups WHERE name = ?`, `DELETE FROM groups WHERE id = ?`, name)
}

// AddGroupMember adds a user to a group; adding twice is fine.
func (s *Store) AddGroupMember(ctx context.Context, groupID, userID int64) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`), groupID, userID); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: add group member: %w", err)
	}
	return nil
}

// RemoveGroupMember removes a user from a group, or answers ErrNotFound.
func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID int64) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		owners, err := s.rootOwners(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.execOne(ctx, tx, `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`, groupID, userID); err != nil {
			return err
		}
		if err := s.keepRootOwner(ctx, tx, owners); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: remove group member: %w", err)
	}
	return nil
}

// GroupMembers lists the names of a group's members.
func (s *Store) GroupMembers(ctx context.Context, groupID int64) ([]string, error) {
	return queryAll(ctx, s.r, s.q(`SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name`),
		[]any{groupID}, func(sc scanner) (string, error) {
			var n string
			return n, sc.Scan(&n)
		})
}

// CreateServicePrincipal adds a service principal with its first secret.
func (s *Store) CreateServicePrincipal(ctx context.Context, appID, displayName string, secret Secret) (ServicePrincipal, error) {
	sp := ServicePrincipal{AppID: appID, DisplayName: displayName, CreatedAt: time.UnixMilli(s.millis())}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if sp.ID, err = s.insertRow(ctx, tx, "service_principals", "app_id, display_name, created_at", appID, displayName, sp.CreatedAt.UnixMilli()); err != nil {
			return err
		}
		if err := s.bump(ctx, tx); err != nil {
			return err
		}
		return s.putSecret(ctx, tx, KindSP, sp.ID, secret)
	})
	if err != nil {
		return ServicePrincipal{}, fmt.Errorf("store: create service principal %q: %w", displayName, s.classify(err))
	}
	return sp, nil
}

const spColumns = `id, app_id, display_name, created_at`

func scanSP(sc scanner) (ServicePrincipal, error) {
	var sp ServicePrincipal
	var created int64
	err := sc.Scan(&sp.ID, &sp.AppID, &sp.DisplayName, &created)
	sp.CreatedAt = time.UnixMilli(created)
	return sp, err
}

// ServicePrincipalByAppID returns the service principal with that client id, or ErrNotFound.
func (s *Store) ServicePrincipalByAppID(ctx context.Context, appID string) (ServicePrincipal, error) {
	sp, err := scanSP(s.r.QueryRowContext(ctx, s.q(`SELECT `+spColumns+` FROM service_principals WHERE app_id = ?`), strings.ToLower(appID)))
	if err != nil {
		return ServicePrincipal{}, notFound(fmt.Sprintf("service principal %q", appID), err)
	}
	return sp, nil
}

// ServicePrincipals lists the service principals by display name.
func (s *Store) ServicePrincipals(ctx context.Context) ([]ServicePrincipal, error) {
	return queryAll(ctx, s.r, `SELECT `+spColumns+` FROM service_principals ORDER BY display_name, app_id`, nil, scanSP)
}

// DeleteServicePrincipal removes a service principal with its secrets and role assignments.
func (s *Store) DeleteServicePrincipal(ctx context.Context, appID string) error {
	return s.deleteIdentity(ctx, KindSP, `SELECT id FROM service_principals WHERE app_id = ?`, `DELETE FROM service_principals WHERE id = ?`, strings.ToLower(appID))
}

func (s *Store) deleteIdentity(ctx context.Context, kind, find, del, key string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, s.q(find), key).Scan(&id); err != nil {
			return notFound(kind+" "+key, err)
		}
		owners, err := s.rootOwners(ctx, tx)
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ?`,
			`DELETE FROM role_assignments WHERE principal_kind = ? AND principal_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.q(q), kind, id); err != nil {
				return err
			}
		}
		if kind == KindGroup {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM group_members WHERE group_id = ?`), id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(del), id); err != nil {
			return err
		}
		if err := s.keepRootOwner(ctx, tx, owners); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: delete %s %q: %w", kind, key, err)
	}
	return nil
}

// Secrets returns the secrets of an identity, by name.
func (s *Store) Secrets(ctx context.Context, kind string, ownerID int64) ([]Secret, error) {
	return queryAll(ctx, s.r, s.q(`SELECT name, hash, created_at, expires_at, sealed FROM secrets WHERE owner_kind = ? AND owner_id = ? ORDER BY name`),
		[]any{kind, ownerID}, func(sc scanner) (Secret, error) {
			var sec Secret
			var created int64
			var expires sql.NullInt64
			err := sc.Scan(&sec.Name, &sec.Hash, &created, &expires, &sec.Sealed)
			sec.CreatedAt = time.UnixMilli(created)
			if expires.Valid {
				sec.ExpiresAt = time.UnixMilli(expires.Int64)
			}
			return sec, err
		})
}

// PutSecret sets (or replaces) one named secret of an identity.
func (s *Store) PutSecret(ctx context.Context, kind string, ownerID int64, sec Secret) error {
	if err := s.tx(ctx, func(tx *sql.Tx) error { return s.putSecret(ctx, tx, kind, ownerID, sec) }); err != nil {
		return fmt.Errorf("store: put secret: %w", err)
	}
	return nil
}

// ReplaceSecrets replaces every secret of an identity by secs.
func (s *Store) ReplaceSecrets(ctx context.Context, kind string, ownerID int64, secs ...Secret) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ?`), kind, ownerID); err != nil {
			return err
		}
		for _, sec := range secs {
			if err := s.putSecret(ctx, tx, kind, ownerID, sec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: replace secrets: %w", err)
	}
	return nil
}

// DeleteSecret removes one named secret, or answers ErrNotFound.
func (s *Store) DeleteSecret(ctx context.Context, kind string, ownerID int64, name string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, `DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ? AND name = ?`, kind, ownerID, name)
	})
	if err != nil {
		return fmt.Errorf("store: delete secret %s: %w", name, err)
	}
	return nil
}

func (s *Store) putSecret(ctx context.Context, tx *sql.Tx, kind string, ownerID int64, sec Secret) error {
	created := sec.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	var expires any
	if !sec.ExpiresAt.IsZero() {
		expires = sec.ExpiresAt.UnixMilli()
	}
	var sealed any
	if sec.Sealed != nil {
		sealed = sec.Sealed
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO secrets (owner_kind, owner_id, name, hash, created_at, expires_at, sealed) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner_kind, owner_id, name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, expires_at = excluded.expires_at, sealed = excluded.sealed`),
		kind, ownerID, sec.Name, sec.Hash, created.UnixMilli(), expires, sealed)
	return err
}

// bump increases the policy version inside tx, so that every replica reloads its snapshot.
func (s *Store) bump(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'policy'`)
	return err
}

// PolicyVersion returns the version of the access-control data; it grows with every change.
func (s *Store) PolicyVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'policy'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: policy version: %w", err)
	}
	return v, nil
}

// execOne runs an update that must touch a row; none is ErrNotFound.
func (s *Store) execOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// classify maps a unique-constraint violation to ErrExists.
func (s *Store) classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") {
		return fmt.Errorf("%w (%v)", ErrExists, err)
	}
	return err
}

func notFound(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// rowQuerier runs a query for one row: *sql.DB and *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// insertRow adds a row to table (one of the tables whose ids tokens and policies name) and
// returns its id, which no row of the table ever had before: a token or policy that names a
// deleted row must never speak for a new one. PostgreSQL's identity columns never give an id
// twice; SQLite's INTEGER PRIMARY KEY gives the id of a deleted last row again, so there the id
// is one past the table's high-water mark (id_high_water), kept in the same transaction.
func (s *Store) insertRow(ctx context.Context, tx *sql.Tx, table, columns string, args ...any) (int64, error) {
	marks := strings.Repeat("?, ", len(args))
	marks = marks[:len(marks)-2]
	if s.d.name == postgresDialect.name {
		var id int64
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO `+table+` (`+columns+`) VALUES (`+marks+`) RETURNING id`), args...).Scan(&id)
		return id, err
	}
	var mark, highest int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT last FROM id_high_water WHERE tbl = ?), 0), COALESCE((SELECT MAX(id) FROM `+table+`), 0)`, table).Scan(&mark, &highest); err != nil {
		return 0, err
	}
	id := max(mark, highest) + 1
	if _, err := tx.ExecContext(ctx, `INSERT INTO id_high_water (tbl, last) VALUES (?, ?) ON CONFLICT (tbl) DO UPDATE SET last = excluded.last`, table, id); err != nil {
		return 0, err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (id, `+columns+`) VALUES (?, `+marks+`)`, append([]any{id}, args...)...)
	return id, err
}

type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryAll[T any](ctx context.Context, db rowsQuerier, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}
