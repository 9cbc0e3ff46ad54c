package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// FederatedCredential is a service principal's trust in an external issuer's tokens.
type FederatedCredential struct {
	ID          string // a GUID
	Name        string
	Issuer      string
	Subject     string // exact; or
	Expression  string // a claims matching expression
	Audiences   []string
	Description string
	JWKS        []byte // a static key set; nil: the issuer's published keys
	CreatedAt   time.Time
}

// MaxFederatedCredentials is how many federated credentials a service principal holds at most
// (Entra's limit).
const MaxFederatedCredentials = 20

const federatedColumns = `id, name, issuer, subject, expression, audiences, description, jwks, created_at`

func scanFederated(sc scanner) (FederatedCredential, error) {
	var fc FederatedCredential
	var aud string
	var jwks sql.NullString
	var created int64
	if err := sc.Scan(&fc.ID, &fc.Name, &fc.Issuer, &fc.Subject, &fc.Expression, &aud, &fc.Description, &jwks, &created); err != nil {
		return fc, err
	}
	if err := json.Unmarshal([]byte(aud), &fc.Audiences); err != nil {
		return fc, fmt.Errorf("audiences of federated credential %s: %w", fc.Name, err)
	}
	if jwks.Valid {
		fc.JWKS = []byte(jwks.String)
	}
	fc.CreatedAt = time.UnixMilli(created)
	return fc, nil
}

// CreateFederatedCredential adds a federated credential to service principal spID: ErrExists
// when its name, or its issuer with its subject or expression, is taken; ErrLimit past
// MaxFederatedCredentials.
func (s *Store) CreateFederatedCredential(ctx context.Context, spID int64, fc FederatedCredential) error {
	aud, jwks, err := federatedValues(fc)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM federated_credentials WHERE sp_id = ?`), spID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxFederatedCredentials {
			return fmt.Errorf("%w: a service principal holds at most %d federated credentials", ErrLimit, MaxFederatedCredentials)
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO federated_credentials (`+federatedColumns+`, sp_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			fc.ID, fc.Name, fc.Issuer, fc.Subject, fc.Expression, aud, fc.Description, jwks, fc.CreatedAt.UnixMilli(), spID)
		return s.classify(err)
	})
	if err != nil {
		return fmt.Errorf("store: create federated credential %q: %w", fc.Name, err)
	}
	return nil
}

// federatedValues are a credential's stored audiences (JSON) and key set (NULL without one).
func federatedValues(fc FederatedCredential) (aud string, jwks any, err error) {
	b, err := json.Marshal(fc.Audiences)
	if fc.JWKS != nil {
		jwks = string(fc.JWKS)
	}
	return string(b), jwks, err
}

// FederatedCredentials lists service principal spID's federated credentials by name.
func (s *Store) FederatedCredentials(ctx context.Context, spID int64) ([]FederatedCredential, error) {
	return queryAll(ctx, s.r, s.q(`SELECT `+federatedColumns+` FROM federated_credentials WHERE sp_id = ? ORDER BY name`), []any{spID}, scanFederated)
}

// FederatedCredential returns spID's federated credential named name or with that id, or
// ErrNotFound.
func (s *Store) FederatedCredential(ctx context.Context, spID int64, nameOrID string) (FederatedCredential, error) {
	fc, err := scanFederated(s.r.QueryRowContext(ctx, s.q(`SELECT `+federatedColumns+` FROM federated_credentials WHERE sp_id = ? AND (name = ? OR id = ?)`),
		spID, nameOrID, nameOrID))
	if errors.Is(err, sql.ErrNoRows) {
		return fc, ErrNotFound
	}
	if err != nil {
		return fc, fmt.Errorf("store: federated credential %q: %w", nameOrID, err)
	}
	return fc, nil
}

// UpdateFederatedCredential replaces what may change of a federated credential (all but its id,
// name and creation time): ErrNotFound, or ErrExists when its issuer and subject are taken.
func (s *Store) UpdateFederatedCredential(ctx context.Context, spID int64, fc FederatedCredential) error {
	aud, jwks, err := federatedValues(fc)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE federated_credentials SET issuer = ?, subject = ?, expression = ?, audiences = ?, description = ?, jwks = ?
			WHERE sp_id = ? AND id = ?`), fc.Issuer, fc.Subject, fc.Expression, aud, fc.Description, jwks, spID, fc.ID)
		if err != nil {
			return s.classify(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: update federated credential %q: %w", fc.Name, err)
	}
	return nil
}

// DeleteFederatedCredential removes spID's federated credential with that id, or ErrNotFound.
func (s *Store) DeleteFederatedCredential(ctx context.Context, spID int64, id string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM federated_credentials WHERE sp_id = ? AND id = ?`), spID, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete federated credential: %w", err)
	}
	return nil
}
