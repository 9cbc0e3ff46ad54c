package s3blob

// SetMaxCacheEntries bounds the entries of caches opened until restore is called.
func SetMaxCacheEntries(n int) (restore func()) {
	old := maxCacheEntries
	maxCacheEntries = n
	return func() { maxCacheEntries = old }
}
