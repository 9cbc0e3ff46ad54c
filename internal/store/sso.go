package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// IdentityProvider is an OpenID Connect provider people sign in with (single sign-on).
type IdentityProvider struct {
	ID           int64
	Name         string
	Issuer       string
	ClientID     string
	SecretSealed []byte // the client secret, sealed; nil for a public client
	// The claims that name the user, their e-mail address and their groups.
	ClaimUsername, ClaimEmail, ClaimGroups string
	Scopes                                 string // space-separated
	CreateUsers                            bool   // a directory user is created on first sign-in
	RedirectURI                            string // berth's callback as registered; "" derives it
	CreatedAt                              time.Time
}

const idpColumns = `id, name, issuer, client_id, secret_sealed, claim_username, claim_email, claim_groups, scopes, create_users, redirect_uri, created_at`

func scanIDP(sc scanner) (IdentityProvider, error) {
	var p IdentityProvider
	var create, created int64
	err := sc.Scan(&p.ID, &p.Name, &p.Issuer, &p.ClientID, &p.SecretSealed, &p.ClaimUsername, &p.ClaimEmail, &p.ClaimGroups, &p.Scopes, &create, &p.RedirectURI, &created)
	p.CreateUsers, p.CreatedAt = create == 1, time.UnixMilli(created)
	return p, err
}

// MaxIdentityProviders bounds how many identity providers a server has.
const MaxIdentityProviders = 20

// CreateIdentityProvider adds one: ErrExists for a name taken, ErrLimit past the bound.
func (s *Store) CreateIdentityProvider(ctx context.Context, p IdentityProvider) (IdentityProvider, error) {
	p.CreatedAt = time.UnixMilli(s.millis())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM identity_providers`).Scan(&n); err != nil {
			return err
		}
		if n >= MaxIdentityProviders {
			return fmt.Errorf("%w: at most %d identity providers", ErrLimit, MaxIdentityProviders)
		}
		var err error
		p.ID, err = s.insertRow(ctx, tx, "identity_providers", "name, issuer, client_id, secret_sealed, claim_username, claim_email, claim_groups, scopes, create_users, redirect_uri, created_at",
			p.Name, p.Issuer, p.ClientID, p.SecretSealed, p.ClaimUsername, p.ClaimEmail, p.ClaimGroups, p.Scopes, boolInt(p.CreateUsers), p.RedirectURI, p.CreatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return p, fmt.Errorf("store: create identity provider %q: %w", p.Name, s.classify(err))
	}
	return p, nil
}

// IdentityProvider returns the named one, or ErrNotFound.
func (s *Store) IdentityProvider(ctx context.Context, name string) (IdentityProvider, error) {
	p, err := scanIDP(s.r.QueryRowContext(ctx, s.q(`SELECT `+idpColumns+` FROM identity_providers WHERE name = ?`), name))
	if err != nil {
		return p, notFound(fmt.Sprintf("identity provider %q", name), err)
	}
	return p, nil
}

// IdentityProviderByID returns one by id, or ErrNotFound.
func (s *Store) IdentityProviderByID(ctx context.Context, id int64) (IdentityProvider, error) {
	p, err := scanIDP(s.r.QueryRowContext(ctx, s.q(`SELECT `+idpColumns+` FROM identity_providers WHERE id = ?`), id))
	if err != nil {
		return p, notFound(fmt.Sprintf("identity provider %d", id), err)
	}
	return p, nil
}

// IdentityProviders lists them by name.
func (s *Store) IdentityProviders(ctx context.Context) ([]IdentityProvider, error) {
	return queryAll(ctx, s.r, `SELECT `+idpColumns+` FROM identity_providers ORDER BY name`, nil, scanIDP)
}

// UpdateIdentityProvider replaces what may change (all but the id, name and creation time).
func (s *Store) UpdateIdentityProvider(ctx context.Context, p IdentityProvider) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, `UPDATE identity_providers SET issuer = ?, client_id = ?, secret_sealed = ?, claim_username = ?, claim_email = ?, claim_groups = ?,
			scopes = ?, create_users = ?, redirect_uri = ? WHERE id = ?`, p.Issuer, p.ClientID, p.SecretSealed, p.ClaimUsername, p.ClaimEmail, p.ClaimGroups,
			p.Scopes, boolInt(p.CreateUsers), p.RedirectURI, p.ID)
	})
	if err != nil {
		return fmt.Errorf("store: update identity provider %q: %w", p.Name, err)
	}
	return nil
}

// DeleteIdentityProvider removes one with its links to users (the users stay).
func (s *Store) DeleteIdentityProvider(ctx context.Context, name string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, `DELETE FROM identity_providers WHERE name = ?`, name)
	})
	if err != nil {
		return fmt.Errorf("store: delete identity provider %q: %w", name, err)
	}
	return nil
}

// ErrNameTaken reports a first single sign-on whose user name a local user already has.
var ErrNameTaken = errors.New("store: a directory user already has this name")

// SSOUser is who an external identity signs in as.
type SSOUser struct {
	User
	Created bool // on this sign-in
}

// SignInExternal finds the directory user linked to an identity provider's subject — or, when
// create, makes one named name (refusing a name a local user has: ErrNameTaken) and links it —
// then makes its memberships follow the groups claim: it joins the directory groups named
// (those that exist), and leaves those an earlier claim made it join that this one no longer
// names (unless that would leave nobody Owner at "/"). ErrNotFound when there is no link and
// create is false.
func (s *Store) SignInExternal(ctx context.Context, idpID int64, subject, name string, create bool, groups []string) (SSOUser, error) {
	var u SSOUser
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var created int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT u.id, u.name, u.created_at FROM external_identities e JOIN users u ON u.id = e.user_id
			WHERE e.idp_id = ? AND e.subject = ?`), idpID, subject).Scan(&u.ID, &u.Name, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows) && !create:
			return ErrNotFound
		case errors.Is(err, sql.ErrNoRows):
			var one int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM users WHERE name = ?`), name).Scan(&one); err == nil {
				return ErrNameTaken
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			now := s.millis()
			if u.ID, err = s.insertRow(ctx, tx, "users", "name, created_at, sso_only", name, now, 1); err != nil {
				return err
			}
			u.Name, u.Created, created = name, true, now
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO external_identities (idp_id, subject, user_id) VALUES (?, ?, ?)`), idpID, subject, u.ID); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		u.CreatedAt = time.UnixMilli(created)
		changed, err := s.syncSSOGroups(ctx, tx, u.ID, groups)
		if err != nil {
			return err
		}
		if changed || u.Created {
			return s.bump(ctx, tx)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNameTaken) {
			return u, err
		}
		return u, fmt.Errorf("store: single sign-on of %q: %w", name, err)
	}
	return u, nil
}

func (s *Store) syncSSOGroups(ctx context.Context, tx *sql.Tx, userID int64, claim []string) (bool, error) {
	type group struct {
		id   int64
		name string
	}
	var named []group
	for _, g := range claim {
		var id int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM groups WHERE name = ?`), g).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue // a group berth does not have
		}
		if err != nil {
			return false, err
		}
		named = append(named, group{id, g})
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT group_id FROM sso_group_members WHERE user_id = ?`), userID)
	if err != nil {
		return false, err
	}
	var made []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return false, err
		}
		made = append(made, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	changed := false
	for _, g := range named {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`), g.id, userID)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO sso_group_members (user_id, group_id) VALUES (?, ?) ON CONFLICT DO NOTHING`), userID, g.id); err != nil {
				return false, err
			}
		}
	}
	for _, id := range made {
		if slices.ContainsFunc(named, func(g group) bool { return g.id == id }) {
			continue
		}
		owners, err := s.rootOwners(ctx, tx)
		if err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM group_members WHERE group_id = ? AND user_id = ?`), id, userID); err != nil {
			return false, err
		}
		if err := s.keepRootOwner(ctx, tx, owners); err != nil {
			// Leaving would leave nobody Owner at "/": the membership stays.
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`), id, userID); err != nil {
				return false, err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sso_group_members WHERE user_id = ? AND group_id = ?`), userID, id); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// SetUserSSOOnly says whether a user signs in with single sign-on only (no password).
func (s *Store) SetUserSSOOnly(ctx context.Context, name string, only bool) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, `UPDATE users SET sso_only = ? WHERE name = ?`, boolInt(only), name)
	})
	if err != nil {
		return fmt.Errorf("store: user %q: %w", name, err)
	}
	return nil
}

// SSOLogin is a single sign-on in progress: started by a client (berth auth login --sso, the
// portal), waiting for the provider, then for the client to redeem its one-time code.
type SSOLogin struct {
	ID              string // the state sent to the provider
	IDPID           int64
	Kind            string // "code" or "device"
	ClientRedirect  string
	ClientState     string
	ClientChallenge string // the client's PKCE challenge (S256)
	Nonce           string
	Verifier        string // berth's PKCE verifier with the provider
	DeviceCode      string // the provider's, for the device flow
	CodeHash        string // of berth's one-time code, once signed in
	UserID          int64
	Subject         string
	ClientIP        string // who started it
	NextPoll        time.Time
	ExpiresAt       time.Time
}

// MaxSSOLogins bounds the sign-ins in progress, and MaxSSOLoginsPerAddress those one client
// address started: past them, new ones are refused until some end.
const (
	MaxSSOLogins           = 10_000
	MaxSSOLoginsPerAddress = 20
)

const ssoColumns = `id, idp_id, kind, client_redirect, client_state, client_challenge, nonce, verifier, device_code, COALESCE(code_hash, ''), COALESCE(user_id, 0), subject, next_poll, expires_at`

func scanSSO(sc scanner) (SSOLogin, error) {
	var l SSOLogin
	var next, exp int64
	err := sc.Scan(&l.ID, &l.IDPID, &l.Kind, &l.ClientRedirect, &l.ClientState, &l.ClientChallenge, &l.Nonce, &l.Verifier, &l.DeviceCode, &l.CodeHash, &l.UserID, &l.Subject, &next, &exp)
	l.NextPoll, l.ExpiresAt = time.UnixMilli(next), time.UnixMilli(exp)
	return l, err
}

// PutSSOLogin records a sign-in in progress (and forgets those expired); ErrLimit when too many
// are in progress.
func (s *Store) PutSSOLogin(ctx context.Context, l SSOLogin) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sso_logins WHERE expires_at < ?`), s.millis()); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sso_logins`).Scan(&n); err != nil {
			return err
		}
		if n >= MaxSSOLogins {
			return fmt.Errorf("%w: %d single sign-ons are in progress", ErrLimit, n)
		}
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM sso_logins WHERE client_ip = ?`), l.ClientIP).Scan(&n); err != nil {
			return err
		}
		if n >= MaxSSOLoginsPerAddress {
			return fmt.Errorf("%w: %d single sign-ons started from %s are in progress", ErrLimit, n, l.ClientIP)
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO sso_logins (id, idp_id, kind, client_redirect, client_state, client_challenge, nonce, verifier, device_code, client_ip, next_poll, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), l.ID, l.IDPID, l.Kind, l.ClientRedirect, l.ClientState, l.ClientChallenge, l.Nonce, l.Verifier, l.DeviceCode,
			l.ClientIP, l.NextPoll.UnixMilli(), l.ExpiresAt.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: single sign-on: %w", err)
	}
	return nil
}

// SSOLogin returns a sign-in in progress that has not expired, or ErrNotFound.
func (s *Store) SSOLogin(ctx context.Context, id string) (SSOLogin, error) {
	l, err := scanSSO(s.r.QueryRowContext(ctx, s.q(`SELECT `+ssoColumns+` FROM sso_logins WHERE id = ? AND expires_at >= ?`), id, s.millis()))
	if err != nil {
		return l, notFound("single sign-on", err)
	}
	return l, nil
}

// CompleteSSOLogin records who signed in, with the hash of the one-time code the client redeems,
// once: ErrNotFound when it is gone or already complete.
func (s *Store) CompleteSSOLogin(ctx context.Context, id, codeHash string, userID int64, subject string, expires time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, `UPDATE sso_logins SET code_hash = ?, user_id = ?, subject = ?, expires_at = ? WHERE id = ? AND code_hash IS NULL AND expires_at >= ?`,
			codeHash, userID, subject, expires.UnixMilli(), id, s.millis())
	})
}

// DelaySSOLogin sets when a device sign-in may next be polled.
func (s *Store) DelaySSOLogin(ctx context.Context, id string, next time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, `UPDATE sso_logins SET next_poll = ? WHERE id = ?`, next.UnixMilli(), id)
	})
}

// RedeemSSOCode takes the complete sign-in whose one-time code hashes to codeHash, deleting it:
// a code is redeemed once. ErrNotFound when unknown, used or expired.
func (s *Store) RedeemSSOCode(ctx context.Context, codeHash string) (SSOLogin, error) {
	var l SSOLogin
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		l, err = scanSSO(tx.QueryRowContext(ctx, s.q(`SELECT `+ssoColumns+` FROM sso_logins WHERE code_hash = ? AND expires_at >= ?`), codeHash, s.millis()))
		if err != nil {
			return notFound("single sign-on code", err)
		}
		return s.execOne(ctx, tx, `DELETE FROM sso_logins WHERE id = ?`, l.ID)
	})
	return l, err
}

// DeleteSSOLogin ends a sign-in in progress.
func (s *Store) DeleteSSOLogin(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM sso_logins WHERE id = ?`), id)
		return err
	})
}

// CheckSSOLoginRoom answers ErrLimit when a new sign-in from clientIP would pass the bounds (so
// that a caller refuses before it calls the provider).
func (s *Store) CheckSSOLoginRoom(ctx context.Context, clientIP string) error {
	var all, mine int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN client_ip = ? THEN 1 ELSE 0 END), 0) FROM sso_logins WHERE expires_at >= ?`),
		clientIP, s.millis()).Scan(&all, &mine)
	switch {
	case err != nil:
		return fmt.Errorf("store: single sign-on: %w", err)
	case all >= MaxSSOLogins || mine >= MaxSSOLoginsPerAddress:
		return fmt.Errorf("%w: too many single sign-ons in progress", ErrLimit)
	}
	return nil
}
