// Command oidc-provider is a small, real OpenID Connect provider for runtrust's tests and for trying the
// runtime service's sign-in by hand (docs/security.md). It is zitadel/oidc's certified provider package (pkg/op)
// with the in-memory storage and login page of that module's example server: authorization code with PKCE,
// discovery, JWKS, userinfo, a username/password form. It is its own module so the collector line's module graph
// never meets zitadel's.
//
//	oidc-provider -listen 127.0.0.1:9998 -client-id runtrust -client-secret s3cret \
//	    -redirect-uri https://localhost:8443/auth/callback -users users.json
//
// users.json maps user ids to users: {"u1": {"ID": "u1", "Username": "alice", "Password": "pw",
// "Email": "alice@example.com", "EmailVerified": true, "PreferredLanguage": "en"}}. The issuer is
// http://<listen>/. Once it serves it prints "ready <issuer>" on stdout, so a test knows when to go on.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(2)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (port 0: any free port)")
	clientID := flag.String("client-id", "runtrust", "the one confidential web client's id")
	clientSecret := flag.String("client-secret", "", "that client's secret (required)")
	usersFile := flag.String("users", "", "JSON file of users (required; see the package comment)")
	verbose := flag.Bool("v", false, "log every request")
	var redirects list
	flag.Var(&redirects, "redirect-uri", "a redirect URI the client may use (repeatable; at least one)")
	flag.Parse()
	switch {
	case *clientSecret == "":
		return errors.New("-client-secret is required")
	case *usersFile == "":
		return errors.New("-users is required")
	case len(redirects) == 0:
		return errors.New("at least one -redirect-uri is required")
	}
	users, err := storage.StoreFromFile(*usersFile)
	if err != nil {
		return fmt.Errorf("users file %s: %w", *usersFile, err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	issuer := "http://" + lis.Addr().String() + "/"
	storage.RegisterClients(storage.WebClient(*clientID, *clientSecret, redirects...))
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	router := exampleop.SetupServer(issuer, storage.NewStorage(users), logger, false)
	fmt.Println("ready", issuer)
	return http.Serve(lis, router)
}
