package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// ownerCmd recovers a server whose owner lost its password, by whoever holds its data: the
// database file or its DSN is the credential here, as it is for a backup.
func (a *app) ownerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "owner", Short: "Recover the server's owner offline, with access to its data"}
	var sf serverFlags
	var name string
	var fromStdin bool
	reset := &cobra.Command{
		Use:   "reset-password",
		Short: "Set a directory user's password straight in the database (a lost owner password)",
		Long: `Set a directory user's password (the bootstrap user 'owner' by default) straight in the
database, with no sign-in: for whoever holds the data (the data folder, or the PostgreSQL DSN)
when the owner's password is lost. The new password is generated and printed once, or read from
stdin with --password-stdin (12 to 256 characters). A login event records the reset (operation
password_reset, with the local user and host). Sign-ins made with the old password keep their
directory tokens until these expire (auth.directory_token_ttl).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := sf.load(cmd)
			if err != nil {
				return err
			}
			chosen := ""
			if fromStdin {
				b, err := io.ReadAll(io.LimitReader(a.stdin, 4096))
				if err != nil {
					return err
				}
				chosen = strings.TrimRight(string(b), "\r\n")
				if len(chosen) < directory.MinPasswordLength || len(chosen) > 256 {
					return fmt.Errorf("the password must have %d to 256 characters", directory.MinPasswordLength)
				}
			}
			ctx := cmd.Context()
			if !store.IsPostgres(cfg.Database) {
				if _, err := os.Stat(strings.TrimPrefix(cfg.Database, "sqlite:")); err != nil {
					return fmt.Errorf("no berth database at %s (--data-dir, --database): %w", cfg.Database, err)
				}
			}
			st, err := store.Open(ctx, cfg.Database, store.Options{NoMigrate: true, MaxConns: cfg.DatabaseMaxConnections})
			if err != nil {
				return err
			}
			defer st.Close()
			u, err := st.UserByName(ctx, name)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no directory user %q in %s", name, store.Redact(cfg.Database))
			}
			if err != nil {
				return err
			}
			password := chosen
			if password == "" {
				password = directory.GenerateSecret()
			}
			hash, err := directory.NewHasher(directory.DefaultParams, 1, time.Now).Hash(ctx, password)
			if err != nil {
				return err
			}
			if err := st.PutSecret(ctx, store.KindUser, u.ID, store.Secret{Name: "password", Hash: hash, CreatedAt: time.Now()}); err != nil {
				return err
			}
			who := "unknown"
			if cur, err := user.Current(); err == nil {
				who = cur.Username
			}
			host, _ := os.Hostname()
			event := store.LoginEvent{Time: time.Now(), Operation: audit.OpPasswordReset, Identity: u.Name, IdentityKind: store.KindUser,
				IP: "local", Result: "success", Reason: "offline_password_reset",
				Message: fmt.Sprintf("password reset offline with 'berth owner reset-password' by %s on %s", who, host)}
			if err := st.InsertEvents(ctx, []store.LoginEvent{event}, nil); err != nil {
				return fmt.Errorf("the password was reset, but the login event was not recorded: %w", err)
			}
			owner, err := holdsOwner(ctx, st, u)
			if err != nil {
				return err
			}
			out := map[string]any{"user": u.Name, "ownerAtRoot": owner}
			if chosen == "" {
				out["password"] = password
				a.warn("The new password is shown this once: store it safely.")
			}
			if !owner {
				a.warn("%s holds no Owner role at '/': sign in as it, or as another owner, to assign roles.", u.Name)
			}
			return a.print(out)
		},
	}
	sf.add(reset, false)
	reset.Flags().StringVarP(&name, "user", "u", directory.BootstrapUser, "the directory user whose password to set")
	reset.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the new password from stdin instead of generating one")
	cmd.AddCommand(reset)
	return cmd
}

// holdsOwner reports whether u is assigned Owner at '/' (directly).
func holdsOwner(ctx context.Context, st *store.Store, u store.User) (bool, error) {
	assignments, err := st.RoleAssignments(ctx)
	if err != nil {
		return false, err
	}
	for _, ra := range assignments {
		if ra.PrincipalKind == store.KindUser && ra.PrincipalID == u.ID && ra.Role == policy.RoleOwner && ra.Scope == policy.ServerScope {
			return true, nil
		}
	}
	return false, nil
}
