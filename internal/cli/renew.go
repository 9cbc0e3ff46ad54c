package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-registry/berth/client"
)

// renew trades the session's refresh token for a new directory token (and the next refresh
// token) and saves them. Another berth process may be renewing the same session at once: an
// exclusive lock on the config folder makes one renew and the other use its result (a refresh
// token is spent on use, and a second use would revoke the sign-in).
func (a *app) renew(ctx context.Context, stale session) (session, error) {
	dir, err := a.configDir()
	if err != nil {
		return stale, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return stale, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return stale, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return stale, err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	s, err := a.loadSession()
	if err != nil {
		return stale, err
	}
	if s.RefreshToken != stale.RefreshToken && s.AccessToken != stale.AccessToken {
		return s, nil // renewed meanwhile by another process
	}
	if s.RefreshToken == "" {
		return s, fmt.Errorf("the sign-in to %s has expired: run 'berth auth login' again", s.Server)
	}
	c, err := a.newClient(s, s.Server, "")
	if err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := c.RenewSignIn(ctx, s.RefreshToken)
	if err != nil {
		if client.IsStatus(err, 401) || client.IsStatus(err, 400) {
			s.AccessToken, s.RefreshToken = "", ""
			a.saveSession(s)
		}
		return s, fmt.Errorf("the sign-in to %s could not be renewed (%w): run 'berth auth login' again", s.Server, transportHint(err, s.Server))
	}
	s.AccessToken, s.RefreshToken = tok.AccessToken, tok.RefreshToken
	s.ExpiresOn = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Format(time.RFC3339)
	return s, a.saveSession(s)
}
