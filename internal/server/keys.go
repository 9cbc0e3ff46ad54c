package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
)

// KeyEncryptionKeyFile is the file, in the data folder, of the key-encryption key a server on
// SQLite generates for itself when none is configured.
const KeyEncryptionKeyFile = "key-encryption-key"

// loadKEK reads the key-encryption key the configuration names, or (SQLite without one) the one
// in the data folder, generated on first start.
func loadKEK(cfg config.Config) ([]byte, error) {
	raw, from := cfg.Auth.KeyEncryptionKey, "auth.key_encryption_key"
	if f := cfg.Auth.KeyEncryptionKeyFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("server: auth.key_encryption_key_file: %w", err)
		}
		raw, from = string(b), f
	}
	if raw == "" && store.IsPostgres(cfg.Database) {
		return nil, errors.New("server: auth.key_encryption_key or auth.key_encryption_key_file must be set with PostgreSQL, the same for every replica " +
			"(e.g. BERTH_AUTH_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64))")
	}
	if raw == "" {
		file := filepath.Join(cfg.DataDir, KeyEncryptionKeyFile)
		b, err := os.ReadFile(file)
		switch {
		case errors.Is(err, os.ErrNotExist):
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
			enc := base64.StdEncoding.EncodeToString(key) + "\n"
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, fmt.Errorf("server: key-encryption key: %w", err)
			}
			_, err = f.WriteString(enc)
			if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
				return nil, fmt.Errorf("server: key-encryption key: %w", err)
			}
			return key, nil
		case err != nil:
			return nil, fmt.Errorf("server: key-encryption key: %w", err)
		}
		raw, from = string(b), file
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(raw))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("server: the key-encryption key in %s is not 32 bytes in base64 (make one with: head -c 32 /dev/urandom | base64)", from)
	}
	return key, nil
}

// KeyStore gives package token the signing keys in the store (token imports no store),
// encrypted at rest with the key-encryption key kek.
func KeyStore(st *store.Store, kek []byte) (token.KeyStore, error) {
	box, err := seal.New(kek)
	if err != nil {
		return nil, fmt.Errorf("server: key-encryption key: %w", err)
	}
	return keyStore{st: st, box: box}, nil
}

type keyStore struct {
	st  *store.Store
	box *seal.Box
}

// seal encrypts a signing key, bound to its key id.
func (k keyStore) seal(kid string, der []byte) ([]byte, error) { return k.box.Seal(der, []byte(kid)) }

func (k keyStore) open(kid string, b []byte) ([]byte, error) {
	if !seal.Sealed(b) {
		return b, nil // from before keys were encrypted (encryptLegacyKeys seals it)
	}
	der, err := k.box.Open(b, []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signing key %s cannot be decrypted: is this the key-encryption key it was stored with (auth.key_encryption_key)?", kid)
	}
	return der, nil
}

func (k keyStore) AddSigningKey(ctx context.Context, key token.StoredKey) error {
	enc, err := k.seal(key.KID, key.PrivateKey)
	if err != nil {
		return err
	}
	key.PrivateKey = enc
	return k.st.AddSigningKey(ctx, store.SigningKey(key))
}

func (k keyStore) SigningKeys(ctx context.Context, now time.Time) ([]token.StoredKey, error) {
	rows, err := k.st.SigningKeys(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]token.StoredKey, len(rows))
	for i, r := range rows {
		if r.PrivateKey, err = k.open(r.KID, r.PrivateKey); err != nil {
			return nil, err
		}
		out[i] = token.StoredKey(r)
	}
	return out, nil
}

func (k keyStore) DeleteRetiredSigningKeys(ctx context.Context, now time.Time) error {
	return k.st.DeleteRetiredSigningKeys(ctx, now)
}

// encryptLegacyKeys seals the signing keys stored in clear by an older berth.
func (k keyStore) encryptLegacyKeys(ctx context.Context, now time.Time) error {
	rows, err := k.st.SigningKeys(ctx, now)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if seal.Sealed(r.PrivateKey) {
			continue
		}
		enc, err := k.seal(r.KID, r.PrivateKey)
		if err != nil {
			return err
		}
		if err := k.st.ReplaceSigningKey(ctx, r.KID, r.PrivateKey, enc); err != nil {
			return err
		}
	}
	return nil
}

// Keys returns the server's signing keys as package token sees them, unsealed (tests).
func (s *Server) Keys() token.KeyStore { return s.keys }
