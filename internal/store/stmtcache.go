package store

import (
	"context"
	"database/sql"
	"sync"
)

// reader runs the store's reads. On SQLite it keeps a prepared statement per query text, so
// that a hot read (a manifest by tag, a sign-in's credentials) is not parsed again on every
// request: modernc's driver prepares every query it is given. pgx caches prepared statements
// itself, so PostgreSQL reads go straight to the pool.
type reader struct {
	db    *sql.DB
	cache bool

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

// maxStmts bounds the cache: queries built with a variable number of placeholders beyond it
// run unprepared.
const maxStmts = 256

func newReader(db *sql.DB, cache bool) *reader {
	return &reader{db: db, cache: cache, stmts: map[string]*sql.Stmt{}}
}

func (r *reader) stmt(ctx context.Context, query string) *sql.Stmt {
	if !r.cache {
		return nil
	}
	r.mu.RLock()
	st := r.stmts[query]
	r.mu.RUnlock()
	if st != nil {
		return st
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stmts[query]; st != nil {
		return st
	}
	if len(r.stmts) >= maxStmts {
		return nil
	}
	st, err := r.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared query reports the error
	}
	r.stmts[query] = st
	return st
}

// QueryContext runs a query through its prepared statement when there is one.
func (r *reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.db.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a one-row query through its prepared statement when there is one.
func (r *reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.db.QueryRowContext(ctx, query, args...)
}

// Close closes the prepared statements (the pool is closed by its owner).
func (r *reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for q, st := range r.stmts {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(r.stmts, q)
	}
	return first
}
