package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Registry is one registry hosted by the server.
type Registry struct {
	ID          int64
	Name        string
	LoginServer string // host[:port] clients use; empty for none
	Default     bool   // answers requests for hosts no registry claims
}

// EnsureDefaultRegistry returns the default registry, creating it with the given name on an
// empty database.
func (s *Store) EnsureDefaultRegistry(ctx context.Context, name string) (Registry, error) {
	var r Registry
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := scanRegistry(tx.QueryRowContext(ctx, `SELECT id, name, COALESCE(login_server, ''), is_default FROM registries WHERE is_default = 1`), &r)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO registries (name, is_default, created_at) VALUES (?, 1, ?)`), name, s.millis())
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		r = Registry{ID: id, Name: name, Default: true}
		return err
	})
	if err != nil {
		return Registry{}, fmt.Errorf("store: default registry: %w", err)
	}
	return r, nil
}

// CreateRegistry adds a registry answering for loginServer (may be empty).
func (s *Store) CreateRegistry(ctx context.Context, name, loginServer string) (Registry, error) {
	var ls any
	if loginServer != "" {
		ls = strings.ToLower(loginServer)
	}
	res, err := s.wdb.ExecContext(ctx, s.q(`INSERT INTO registries (name, login_server, created_at) VALUES (?, ?, ?)`), name, ls, s.millis())
	if err != nil {
		return Registry{}, fmt.Errorf("store: create registry %q: %w", name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Registry{}, fmt.Errorf("store: create registry %q: %w", name, err)
	}
	return Registry{ID: id, Name: name, LoginServer: strings.ToLower(loginServer)}, nil
}

// Registries lists every registry, by name.
func (s *Store) Registries(ctx context.Context) ([]Registry, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, name, COALESCE(login_server, ''), is_default FROM registries ORDER BY name`)
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
	return out, rows.Err()
}

type scanner interface{ Scan(...any) error }

func scanRegistry(sc scanner, r *Registry) error {
	var def int
	if err := sc.Scan(&r.ID, &r.Name, &r.LoginServer, &def); err != nil {
		return err
	}
	r.Default = def == 1
	return nil
}
