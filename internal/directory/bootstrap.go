package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// BootstrapUser is the directory user created on an empty database, with Owner at "/".
const BootstrapUser = "owner"

// BootstrapPasswordFile is the file, in the data folder, that receives a generated bootstrap
// password.
const BootstrapPasswordFile = "bootstrap-owner-password"

// MinPasswordLength is the shortest password a user may choose, the bootstrap owner's included.
const MinPasswordLength = 12

// Bootstrap creates the owner user on a database without users. Its password is the given one,
// or a generated one written once to a 0600 file in dataDir. Replicas starting together are
// safe: the first to create the user wins, the others find it.
func (d *Directory) Bootstrap(ctx context.Context, dataDir, password string, log *slog.Logger) error {
	n, err := d.st.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	if password != "" && (len(password) < MinPasswordLength || len(password) > 256) {
		return fmt.Errorf("directory: bootstrap: BERTH_BOOTSTRAP_PASSWORD has %d characters: the owner's password must have %d to 256, as every user's",
			len(password), MinPasswordLength)
	}
	file := ""
	if password == "" {
		password = GenerateSecret()
		file = filepath.Join(dataDir, BootstrapPasswordFile)
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("directory: bootstrap: %w", err)
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("directory: bootstrap: cannot write the owner's password: %w", err)
		}
		_, err = f.WriteString(password + "\n")
		if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
			return fmt.Errorf("directory: bootstrap: %w", err)
		}
	}
	hash, err := d.h.Hash(ctx, password)
	if err != nil {
		return err
	}
	u, err := d.st.CreateUser(ctx, BootstrapUser, hash)
	if errors.Is(err, store.ErrExists) {
		return nil // another replica bootstrapped first
	}
	if err != nil {
		return err
	}
	if err := d.st.CreateRoleAssignment(ctx, store.RoleAssignment{ID: NewGUID(), PrincipalKind: store.KindUser,
		PrincipalID: u.ID, Role: policy.RoleOwner, Scope: policy.ServerScope}); err != nil {
		return err
	}
	if file != "" {
		log.Info("created the bootstrap user with the Owner role at '/'; its generated password is in the file named here (shown once: move it somewhere safe)",
			"user", BootstrapUser, "password_file", file)
	} else {
		log.Info("created the bootstrap user with the Owner role at '/', with the password from BERTH_BOOTSTRAP_PASSWORD", "user", BootstrapUser)
	}
	return nil
}
