package store

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// PostgreSQL's writers coordinate with transaction-scoped advisory locks, on every replica:
//
//   - writerLock, the writer lock: tx takes it exclusively (the transaction runs alone, as every
//     write did before issue 23), txOn takes it shared;
//   - one lock per key that a txOn transaction names: a repository (manifests, tags, blob links
//     and locks of that repository), a sign-in throttling counter, … Two transactions on
//     different keys never wait on each other; two on the same key run one after the other, so
//     a check-then-write on the key's rows holds under READ COMMITTED.
//
// Locks are taken in one statement, the writer lock first and then the keys in ascending order,
// so two transactions cannot wait on each other in a circle. A collision of two keys' hashes
// only makes their transactions take turns.

// writerLock is the key of the writer lock ("berth" in ASCII).
const writerLock lockKey = 0x6265727468

// lockKey is an advisory lock's 64-bit key.
type lockKey int64

type lockMode int

const (
	lockAll    lockMode = iota // the writer lock, exclusive
	lockShared                 // the writer lock shared, and the keys exclusive
)

// keyOf is the lock key of what parts name (their FNV-1a hash); never the writer lock's.
func keyOf(kind string, parts ...string) lockKey {
	h := fnv.New64a()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	k := lockKey(h.Sum64())
	if k == writerLock {
		k++
	}
	return k
}

// repoKey is the lock of a repository's content: its manifests, tags, blob links and locks.
func repoKey(registryID int64, repo string) lockKey {
	return keyOf("repository", strconv.FormatInt(registryID, 10), repo)
}

// signinKey is the lock of one sign-in throttling counter.
func signinKey(key string) lockKey { return keyOf("signin", key) }

// lockQuery is the statement that takes mode's locks.
func lockQuery(mode lockMode, keys []lockKey) string {
	if mode == lockAll {
		return "SELECT pg_advisory_xact_lock($1)"
	}
	var b strings.Builder
	b.WriteString("SELECT pg_advisory_xact_lock_shared($1)")
	for i := range sortedKeys(keys) {
		b.WriteString(", pg_advisory_xact_lock($" + strconv.Itoa(i+2) + ")")
	}
	return b.String()
}

// lockArgs are lockQuery's arguments in namespace ns: the writer lock, then the keys in
// ascending order (of the keys as locked).
func lockArgs(ns lockKey, keys []lockKey) []any {
	args := []any{int64(writerLock ^ ns)}
	in := make([]lockKey, len(keys))
	for i, k := range keys {
		in[i] = k ^ ns
	}
	for _, k := range sortedKeys(in) {
		args = append(args, int64(k))
	}
	return args
}

// lockNamespace is what a store's lock keys are XORed with: advisory locks are the whole
// database's, and stores in different schemas of one database (two installations, or the
// tests' schemas) must not hold each other off. The public schema keeps the keys as they
// are, so that replicas of different versions there still exclude each other.
func lockNamespace(schema string) lockKey {
	if schema == "" || schema == "public" {
		return 0
	}
	return keyOf("schema", schema)
}

// sortedKeys returns keys in ascending order without repeats.
func sortedKeys(keys []lockKey) []lockKey {
	if len(keys) < 2 {
		return keys
	}
	k := slices.Clone(keys)
	slices.Sort(k)
	return slices.Compact(k)
}
