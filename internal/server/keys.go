package server

import (
	"context"
	"time"

	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
)

// KeyStore gives package token the signing keys in the store (token imports no store).
func KeyStore(st *store.Store) token.KeyStore { return keyStore{st} }

type keyStore struct{ st *store.Store }

func (k keyStore) AddSigningKey(ctx context.Context, key token.StoredKey) error {
	return k.st.AddSigningKey(ctx, store.SigningKey(key))
}

func (k keyStore) SigningKeys(ctx context.Context, now time.Time) ([]token.StoredKey, error) {
	rows, err := k.st.SigningKeys(ctx, now)
	out := make([]token.StoredKey, len(rows))
	for i, r := range rows {
		out[i] = token.StoredKey(r)
	}
	return out, err
}

func (k keyStore) DeleteRetiredSigningKeys(ctx context.Context, now time.Time) error {
	return k.st.DeleteRetiredSigningKeys(ctx, now)
}
