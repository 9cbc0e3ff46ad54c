package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RoleAssignment gives a principal a role at a scope ("/" or "/registries/NAME").
type RoleAssignment struct {
	ID               string
	PrincipalKind    string // user, group or sp
	PrincipalID      int64
	Role             string
	Scope            string
	Condition        string
	ConditionVersion string
	CreatedAt        time.Time
}

// CreateRoleAssignment records an assignment.
func (s *Store) CreateRoleAssignment(ctx context.Context, a RoleAssignment) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO role_assignments (id, principal_kind, principal_id, role, scope, condition, condition_version, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), a.ID, a.PrincipalKind, a.PrincipalID, a.Role, a.Scope, a.Condition, a.ConditionVersion, s.millis()); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: create role assignment: %w", s.classify(err))
	}
	return nil
}

// RoleAssignments lists every assignment, oldest first.
func (s *Store) RoleAssignments(ctx context.Context) ([]RoleAssignment, error) {
	return queryAll(ctx, s.r, `SELECT id, principal_kind, principal_id, role, scope, condition, condition_version, created_at
		FROM role_assignments ORDER BY created_at, id`, nil, scanRoleAssignment)
}

func scanRoleAssignment(sc scanner) (RoleAssignment, error) {
	var a RoleAssignment
	var created int64
	err := sc.Scan(&a.ID, &a.PrincipalKind, &a.PrincipalID, &a.Role, &a.Scope, &a.Condition, &a.ConditionVersion, &created)
	a.CreatedAt = time.UnixMilli(created)
	return a, err
}

// Memberships maps each user id to the ids of its groups.
func (s *Store) Memberships(ctx context.Context) (map[int64][]int64, error) {
	type pair struct{ user, group int64 }
	pairs, err := queryAll(ctx, s.r, `SELECT user_id, group_id FROM group_members ORDER BY user_id, group_id`, nil, func(sc scanner) (pair, error) {
		var p pair
		return p, sc.Scan(&p.user, &p.group)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]int64)
	for _, p := range pairs {
		out[p.user] = append(out[p.user], p.group)
	}
	return out, nil
}

// RoleAssignmentByID returns one assignment, or ErrNotFound.
func (s *Store) RoleAssignmentByID(ctx context.Context, id string) (RoleAssignment, error) {
	as, err := queryAll(ctx, s.r, s.q(`SELECT id, principal_kind, principal_id, role, scope, condition, condition_version, created_at
		FROM role_assignments WHERE id = ?`), []any{id}, scanRoleAssignment)
	if err != nil {
		return RoleAssignment{}, err
	}
	if len(as) == 0 {
		return RoleAssignment{}, fmt.Errorf("role assignment %q: %w", id, ErrNotFound)
	}
	return as[0], nil
}

// DeleteRoleAssignment removes an assignment, unless it is the last that gives anyone Owner at
// "/" (ErrLastOwner).
func (s *Store) DeleteRoleAssignment(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		owners, err := s.rootOwners(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.execOne(ctx, tx, `DELETE FROM role_assignments WHERE id = ?`, id); err != nil {
			return err
		}
		if err := s.keepRootOwner(ctx, tx, owners); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: delete role assignment %q: %w", id, err)
	}
	return nil
}

// rootOwners counts the identities that can manage the whole server: users and service
// principals that exist and hold Owner at "/", themselves or through a group they belong to.
func (s *Store) rootOwners(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM (
		SELECT 'user', u.id FROM role_assignments a JOIN users u ON a.principal_kind = 'user' AND u.id = a.principal_id
			WHERE a.role = 'Owner' AND a.scope = '/'
		UNION
		SELECT 'sp', p.id FROM role_assignments a JOIN service_principals p ON a.principal_kind = 'sp' AND p.id = a.principal_id
			WHERE a.role = 'Owner' AND a.scope = '/'
		UNION
		SELECT 'user', m.user_id FROM role_assignments a JOIN group_members m ON a.principal_kind = 'group' AND m.group_id = a.principal_id
			JOIN users u ON u.id = m.user_id
			WHERE a.role = 'Owner' AND a.scope = '/'
	) owners`)).Scan(&n)
	return n, err
}

// ErrLastOwner refuses a change that would leave nobody with Owner at "/".
var ErrLastOwner = fmt.Errorf("%w: nobody would be left with the Owner role at '/' to manage the server: assign Owner at '/' to another user or service principal first", ErrConflict)

// keepRootOwner fails with ErrLastOwner when the change made in tx took the last Owner at "/"
// away from a server that had one (before: rootOwners before the change).
func (s *Store) keepRootOwner(ctx context.Context, tx *sql.Tx, before int) error {
	if before == 0 {
		return nil
	}
	after, err := s.rootOwners(ctx, tx)
	if err != nil {
		return err
	}
	if after == 0 {
		return ErrLastOwner
	}
	return nil
}
