// Command hmis is the HMIS server.
//
//	hmis [serve] [--demo] [--addr :8080]   run the server (the default)
//	hmis --help                            list the commands and flags
//	hmis migrate                           create or update the database schema
//	hmis seed [--demo]                     seed an empty database (an admin user, or the demo hospital)
//	hmis audit verify                      check the audit trail against its key and checkpoints
//	hmis keys status|rotate|retire|rewrap  manage the keys of the data encrypted at rest
//	hmis config                            print the configuration variables as a Markdown table
//	hmis roles                             print who may call each operation, from the built-in policy, as a Markdown table
//	hmis policy show                       print the access policy in force (the database's version), as the role table and its lines
//	hmis policy check FILE                 check a policy file or directory offline, as a change through the API is checked
//	hmis totp USER                         print the current TOTP code of a demo user whose role requires a second factor
//	hmis version                           print the version
//
// Configuration comes from HMIS_* environment variables; see the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // so HMIS_TIMEZONE works on hosts without a zone database

	"github.com/hmis-dev/hmis/graph"
	"github.com/hmis-dev/hmis/internal/accesspolicy"
	"github.com/hmis-dev/hmis/internal/app"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/demo"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/policies"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hmis:", err)
		os.Exit(1)
	}
}

// usage lists the commands; `hmis --help` prints it with the flags.
const usage = `usage: hmis [command] [--demo] [--addr ADDR]

commands:
  serve          run the server (the default)
  migrate        create or update the database schema
  seed           seed an empty database: an admin user, or with --demo the demo hospital
  audit verify   check the audit trail against its key and checkpoints
  keys status    list the data keys and how many stored values each encrypts
  keys rotate    make a new primary data key and re-encrypt every sensitive value under it (server may run)
  keys retire    re-encrypt stragglers and drop the data keys no value uses (a minute after rotate)
  keys rewrap    wrap the keysets with a new master key: --new-master-key-file FILE
  config         print the configuration variables as a Markdown table
  roles          print who may call each operation, from the built-in access policy, as a Markdown table
  policy show    print the access policy in force (changes made through the API included): role table and lines
  policy check FILE  check a policy file, or a directory of *.csv files, offline (exit status 1 on a problem)
  totp USER      print the current second-factor code of a demo user (doctor, admin, auditor)
  version        print the version

Configuration comes from HMIS_* environment variables (hmis config lists them).

flags:
`

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	flags := flag.NewFlagSet("hmis", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), usage)
		flags.PrintDefaults()
	}
	flags.BoolVar(&cfg.Demo, "demo", cfg.Demo, "demo mode (HMIS_DEMO)")
	flags.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (HMIS_ADDR)")
	newMasterKeyFile := flags.String("new-master-key-file", "", "keys rewrap: file holding the new master key (base64, 32 bytes)")
	// Asked for, help is the answer and goes to stdout (hmis --help | less);
	// after a mistake it goes with the error to stderr.
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			flags.SetOutput(stdout)
			flags.Usage()
			return nil
		}
	}
	// Flags may stand before the command and after it: hmis --demo seed
	// and hmis seed --demo are the same.
	if err := flags.Parse(args); err != nil {
		return helpIsNoError(err)
	}
	command, rest := "serve", flags.Args()
	if len(rest) > 0 {
		command = rest[0]
		if err := flags.Parse(rest[1:]); err != nil {
			return helpIsNoError(err)
		}
		rest = flags.Args()
	}
	switch command {
	case "serve", "migrate", "seed", "config", "roles", "version":
		if len(rest) > 0 {
			return fmt.Errorf("hmis %s takes no argument %q (hmis --help lists the commands)", command, rest[0])
		}
	case "totp":
		if len(rest) != 1 {
			return errors.New("usage: hmis totp USER (a demo user whose role requires a second factor)")
		}
		return demoTOTP(rest[0], stdout)
	case "policy":
		switch {
		case len(rest) == 1 && rest[0] == "show":
		case len(rest) == 2 && rest[0] == "check":
			return policyCheck(rest[1], stdout)
		default:
			return errors.New("usage: hmis policy show | hmis policy check FILE")
		}
	case "audit", "keys":
		// A subcommand's flags may follow it too: hmis audit verify --demo,
		// hmis keys rewrap --new-master-key-file FILE.
		if len(rest) > 0 {
			if err := flags.Parse(rest[1:]); err != nil {
				return helpIsNoError(err)
			}
			rest = append([]string{rest[0]}, flags.Args()...)
		}
	default:
		return fmt.Errorf("unknown command %q (hmis --help lists the commands)", command)
	}
	switch {
	case command == "audit" && (len(rest) != 1 || rest[0] != "verify"):
		return errors.New("usage: hmis audit verify")
	case command == "keys" && (len(rest) != 1 || !slices.Contains([]string{"status", "rotate", "retire", "rewrap"}, rest[0])):
		return errors.New("usage: hmis keys status|rotate|retire|rewrap [--new-master-key-file FILE]")
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch command {
	case "version":
		fmt.Fprintln(stdout, "hmis", version())
		return nil
	case "config":
		fmt.Fprint(stdout, config.Markdown())
		return nil
	case "roles":
		table, err := roleTable()
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, table)
		return nil
	}

	if command == "audit" {
		return auditVerify(ctx, cfg, log, stdout)
	}
	if command == "policy" {
		return policyShow(ctx, cfg, stdout)
	}
	if command == "keys" {
		return keysCommand(ctx, cfg, log, rest[0], *newMasterKeyFile, stdout)
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	switch command {
	case "migrate":
		fmt.Fprintln(stdout, "schema is up to date")
		return nil
	case "seed":
		return seed(ctx, a, stdout)
	}
	if cfg.Demo {
		if err := a.SeedDemo(ctx, stdout); err != nil {
			return err
		}
	}
	return a.Serve(ctx)
}

// auditVerify checks the audit trail with no more than it needs: the
// database, the audit key and the checkpoint file. It starts no server and
// needs no token secret, so an auditor can run it with the key alone.
func auditVerify(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	keys, err := app.AuditKeys(cfg, false, log)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.DatabaseURL, cfg.SQLitePath)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	trail, err := audit.NewTrail(st, audit.Options{Keys: keys, CheckpointFile: cfg.AuditCheckpointPath(), Log: log})
	if err != nil {
		return err
	}
	defer trail.Close(ctx)
	rep, err := trail.Verify(auth.SystemContext(ctx), cfg.AuditStaleAfter)
	if err != nil {
		return fmt.Errorf("audit trail is broken after %d intact events: %w", rep.Checked, err)
	}
	fmt.Fprintf(stdout, "audit chain intact: %d sealed events verified (head seq %d), %d checkpoints matched, %d events not sealed yet\n",
		rep.Checked, rep.Head, rep.Checkpoints, rep.Unsealed)
	if rep.Legacy > 0 {
		fmt.Fprintf(stdout, "%d events were sealed by the unkeyed chain of an earlier version\n", rep.Legacy)
	}
	for _, f := range rep.Findings {
		fmt.Fprintln(stdout, "finding:", f)
	}
	if len(rep.Findings) > 0 {
		return fmt.Errorf("audit verify: %d findings need attention", len(rep.Findings))
	}
	return nil
}

// helpIsNoError: asking for help is a success, not a failed parse.
func helpIsNoError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// seed fills an empty database: the demo hospital in demo mode, otherwise
// only an admin user with HMIS_ADMIN_PASSWORD.
func seed(ctx context.Context, a *app.App, stdout io.Writer) error {
	if a.Config.Demo {
		return a.SeedDemo(ctx, stdout)
	}
	ctx = auth.SystemContext(ctx)
	if exists, err := a.Store.Client.User.Query().Exist(ctx); err != nil {
		return err
	} else if exists {
		fmt.Fprintln(stdout, "database already has users; nothing seeded")
		return nil
	}
	if len(a.Config.AdminPassword) < auth.MinPasswordLength {
		return fmt.Errorf("set HMIS_ADMIN_PASSWORD (at least %d characters) for the admin user", auth.MinPasswordLength)
	}
	hash, err := auth.HashPassword(a.Config.AdminPassword)
	if err != nil {
		return err
	}
	if err := a.Store.Client.User.Create().SetUsername("admin").SetPasswordHash(hash).
		SetRoles([]string{"admin"}).Exec(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "created user admin (role admin)")
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// roleTable is the README's role table, computed from the embedded policy
// over the schema's root operations.
// demoTOTP prints the current code of the published demo secret, for a
// demo user the policy makes sign in with a second factor. It knows no
// other secret: real users' codes come only from their own devices.
func demoTOTP(username string, stdout io.Writer) error {
	enforcer, err := authz.NewEnforcer(policies.Model, policies.Policy)
	if err != nil {
		return err
	}
	requires := func(role string) bool {
		return enforcer.Allows(&auth.Viewer{Roles: []string{role}}, auth.RequireMFAObject)
	}
	for _, l := range demo.MFALogins(requires) {
		if l.Username == username {
			code, err := auth.TOTPCode(demo.TOTPSecret, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, code)
			return nil
		}
	}
	return fmt.Errorf("%q is not a demo user with a second factor; codes of real users come from their authenticator app", username)
}

func roleTable() (string, error) {
	enforcer, err := authz.NewEnforcer(policies.Model, policies.Policy)
	if err != nil {
		return "", err
	}
	return enforcer.RoleTable(graph.NewExecutableSchema(graph.Config{}).Schema()), nil
}

// policyCheck runs on a policy file the checks a change through the API
// passes, without a database: for deployments that keep their policy in
// version control and check it before they deploy it.
func policyCheck(path string, stdout io.Writer) error {
	text, err := policies.FromPath(path)
	if err != nil {
		return err
	}
	e, errs := authz.CheckPolicy(policies.Model, text, graph.NewExecutableSchema(graph.Config{}).Schema())
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(stdout, path+":", err)
		}
		return fmt.Errorf("policy check: %d problems in %s", len(errs), path)
	}
	lines, _ := authz.PolicyLines(text)
	fmt.Fprintf(stdout, "%s: policy ok: %d lines, roles %s\n", path, len(lines), strings.Join(e.Roles(), ", "))
	return nil
}

// policyShow prints the policy in force: the latest version in the
// database, or the built-in (or HMIS_POLICY_FILE) one when no change was
// ever applied. It needs the database only.
func policyShow(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	baseline, err := policies.FromPath(cfg.PolicyFile)
	if err != nil {
		return fmt.Errorf("HMIS_POLICY_FILE: %w", err)
	}
	st, err := store.Open(cfg.DatabaseURL, cfg.SQLitePath)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	version, text, err := accesspolicy.Current(auth.SystemContext(ctx), st.Client, baseline)
	if err != nil {
		return err
	}
	enforcer, err := authz.NewEnforcer(policies.Model, text)
	if err != nil {
		return err
	}
	lines, _ := authz.PolicyLines(text)
	fmt.Fprintf(stdout, "Access policy version %d (0: the built-in policy).\n\n", version)
	fmt.Fprint(stdout, enforcer.RoleTable(graph.NewExecutableSchema(graph.Config{}).Schema()))
	fmt.Fprintf(stdout, "\n```\n%s\n```\n", strings.Join(lines, "\n"))
	return nil
}
