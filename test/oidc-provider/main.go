// Command oidc-provider is a real OpenID Connect provider for berth's single sign-on tests, built
// on zitadel/oidc's OP library and its example storage (authorization code with PKCE, device
// authorization, discovery, key set, userinfo), with users from a file and a groups claim the
// example lacks. It is its own module so that berth's go.mod does not carry an OP; the project's
// scripts build it (scripts/install-test-tools.sh).
//
//	oidc-provider -listen 127.0.0.1:0 -users users.json -groups groups.json \
//	  -client berth:secret:http://127.0.0.1:5000/mgmt/v1/sso/callback -device-client berth-device:secret
//
// prints "issuer http://127.0.0.1:PORT/" when ready.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// groupsStorage adds a groups claim (from a file: user id → group names) to ID tokens and
// userinfo.
type groupsStorage struct {
	*storage.Storage
	groups map[string][]string
}

func (s groupsStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	s.addGroups(ui, req.GetSubject())
	return nil
}

func (s groupsStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, ui.Subject)
	return nil
}

func (s groupsStorage) addGroups(ui *oidc.UserInfo, subject string) {
	if g, ok := s.groups[subject]; ok {
		ui.AppendClaims("groups", g)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	usersFile := flag.String("users", "", "users: a JSON object of id → {ID, Username, Password, Email, EmailVerified, FirstName, LastName}")
	groupsFile := flag.String("groups", "", "groups: a JSON object of user id → [group names]")
	var clients, devices, natives multi
	flag.Var(&clients, "client", "a web client ID:SECRET:REDIRECT_URI (repeatable)")
	flag.Var(&natives, "public-client", "a public (native) client ID:REDIRECT_URI, without a secret: PKCE only (repeatable)")
	flag.Var(&devices, "device-client", "a device-flow client ID:SECRET (repeatable)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	issuer := "http://" + ln.Addr().String() + "/"
	var regs []*storage.Client
	for _, c := range clients {
		id, rest, _ := strings.Cut(c, ":")
		secret, redirect, _ := strings.Cut(rest, ":")
		regs = append(regs, storage.WebClient(id, secret, redirect))
	}
	for _, c := range natives {
		id, redirect, _ := strings.Cut(c, ":")
		regs = append(regs, storage.NativeClient(id, redirect))
	}
	for _, c := range devices {
		id, secret, _ := strings.Cut(c, ":")
		regs = append(regs, storage.DeviceClient(id, secret))
	}
	storage.RegisterClients(regs...)
	users := storage.NewUserStore(issuer)
	if *usersFile != "" {
		if users, err = storage.StoreFromFile(*usersFile); err != nil {
			log.Error("users", "err", err)
			os.Exit(1)
		}
	}
	groups := map[string][]string{}
	if *groupsFile != "" {
		b, err := os.ReadFile(*groupsFile)
		if err == nil {
			err = json.Unmarshal(b, &groups)
		}
		if err != nil {
			log.Error("groups", "err", err)
			os.Exit(1)
		}
	}
	router := exampleop.SetupServer(issuer, groupsStorage{storage.NewStorage(users), groups}, log, false)
	fmt.Printf("issuer %s\n", issuer)
	if err := http.Serve(ln, router); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }
