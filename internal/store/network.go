package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLimit means a limit on the number of things was reached.
var ErrLimit = errors.New("store: limit reached")

// AddNetworkRule adds an allow rule for cidr (canonical form) to a registry.
func (s *Store) AddNetworkRule(ctx context.Context, registry, cidr string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM registries WHERE name = ?`), registry).Scan(&id); err != nil {
			return notFound(fmt.Sprintf("registry %q", registry), err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM network_rules WHERE registry_id = ?`), id).Scan(&n); err != nil {
			return err
		}
		if n >= MaxNetworkRules {
			return fmt.Errorf("%w: registry %q already has %d network rules, the most a registry may have", ErrLimit, registry, n)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO network_rules (registry_id, value, action, created_at) VALUES (?, ?, ?, ?)`),
			id, cidr, ActionAllow, s.millis()); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: add network rule %s: %w", cidr, s.classify(err))
	}
	return nil
}

// RemoveNetworkRule removes a registry's rule for cidr, or answers ErrNotFound.
func (s *Store) RemoveNetworkRule(ctx context.Context, registry, cidr string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.execOne(ctx, tx, `DELETE FROM network_rules WHERE value = ? AND registry_id = (SELECT id FROM registries WHERE name = ?)`, cidr, registry); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: remove network rule %s: %w", cidr, err)
	}
	return nil
}

func (s *Store) networkRules(ctx context.Context, registryID int64) ([]NetworkRule, error) {
	return queryAll(ctx, s.r, s.q(`SELECT value, action, created_at FROM network_rules WHERE registry_id = ? ORDER BY created_at, value`),
		[]any{registryID}, scanNetworkRule)
}

func (s *Store) allNetworkRules(ctx context.Context) (map[int64][]NetworkRule, error) {
	type row struct {
		registry int64
		rule     NetworkRule
	}
	rows, err := queryAll(ctx, s.r, `SELECT registry_id, value, action, created_at FROM network_rules ORDER BY registry_id, created_at, value`, nil,
		func(sc scanner) (row, error) {
			var r row
			var created int64
			err := sc.Scan(&r.registry, &r.rule.Value, &r.rule.Action, &created)
			r.rule.CreatedAt = time.UnixMilli(created)
			return r, err
		})
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]NetworkRule)
	for _, r := range rows {
		out[r.registry] = append(out[r.registry], r.rule)
	}
	return out, nil
}

func scanNetworkRule(sc scanner) (NetworkRule, error) {
	var r NetworkRule
	var created int64
	err := sc.Scan(&r.Value, &r.Action, &created)
	r.CreatedAt = time.UnixMilli(created)
	return r, err
}
