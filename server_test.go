package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/app"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/crypt"
	"github.com/hmis-dev/hmis/internal/demo"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

func hmis(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String(), err
}

func TestCommands(t *testing.T) {
	dbURL, sqlitePath := testenv.DatabaseURL(t), testenv.SQLitePath(t)
	checkpoints := sqlitePath + ".checkpoints"
	t.Setenv("HMIS_DATABASE_URL", dbURL)
	t.Setenv("HMIS_SQLITE_PATH", sqlitePath)
	t.Setenv("HMIS_REDIS_URL", "")
	t.Setenv("HMIS_TOKEN_SECRET", "")
	t.Setenv("HMIS_AUDIT_KEY", "")
	t.Setenv("HMIS_AUDIT_CHECKPOINT_FILE", checkpoints)
	t.Setenv("HMIS_MASTER_KEY", "")
	t.Setenv("HMIS_MASTER_KEY_FILE", "")
	t.Setenv("HMIS_LOG_LEVEL", "error")

	_, err := hmis(t, "migrate")
	if err == nil || !strings.Contains(err.Error(), "HMIS_TOKEN_SECRET") {
		t.Fatalf("outside demo mode a missing secret must stop the server: %v", err)
	}
	t.Setenv("HMIS_TOKEN_SECRET", "cli-test-secret-cli-test-secret-0123")
	if dbURL != "" {
		// Only the embedded database has a development default for the
		// audit key; a PostgreSQL deployment must be given one.
		_, err := hmis(t, "migrate")
		if err == nil || !strings.Contains(err.Error(), "HMIS_AUDIT_KEY") {
			t.Fatalf("on PostgreSQL outside demo mode a missing audit key must stop the server: %v", err)
		}
		spec, err := audit.NewKeySpec("cli1")
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("HMIS_AUDIT_KEY", spec)
		// Nor for the master key of the data at rest.
		_, err = hmis(t, "migrate")
		if err == nil || !strings.Contains(err.Error(), "HMIS_MASTER_KEY") {
			t.Fatalf("on PostgreSQL outside demo mode a missing master key must stop the server: %v", err)
		}
		key, err := crypt.NewMasterKeyText()
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("HMIS_MASTER_KEY", key)
	}

	out, err := hmis(t, "seed")
	if err == nil || !strings.Contains(err.Error(), "HMIS_ADMIN_PASSWORD") {
		t.Fatalf("seed without an admin password: %v %q", err, out)
	}
	out, err = hmis(t, "seed", "--demo")
	if err != nil || !strings.Contains(out, "Demo logins") || !strings.Contains(out, "reception") {
		t.Fatalf("seed --demo: %v %q", err, out)
	}
	if _, err = hmis(t, "seed", "--demo"); err != nil {
		t.Fatalf("seeding a seeded database must be harmless: %v", err)
	}

	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := app.AuditKeys(cfg, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("the audit key the commands used: %v", err)
	}
	st, err := store.Open(dbURL, sqlitePath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	trail, err := audit.NewTrail(st, audit.Options{Keys: keys, CheckpointFile: checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer trail.Close(ctx)
	for _, op := range []string{"a", "b", "c"} {
		if _, err := trail.Append(ctx, audit.Entry{Operation: op, Kind: auditevent.KindSYSTEM, Outcome: auditevent.OutcomeALLOWED}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := trail.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	// An auditor needs the database, the key and the checkpoints; not the
	// token secret.
	t.Setenv("HMIS_TOKEN_SECRET", "")
	out, err = hmis(t, "audit", "verify")
	if err != nil || !strings.Contains(out, "3 sealed events verified") || !strings.Contains(out, "1 checkpoints matched") {
		t.Fatalf("audit verify on an intact trail: %v %q", err, out)
	}
	if _, err := st.DB.Exec(`UPDATE audit_events SET operation = 'x' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	_, err = hmis(t, "audit", "verify")
	if err == nil || !strings.Contains(err.Error(), "seq 2") || !strings.Contains(err.Error(), audit.ReasonHash) {
		t.Fatalf("audit verify must name the tampered row: %v", err)
	}
	if _, err := st.DB.Exec(`DELETE FROM audit_events WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB.Exec(`UPDATE audit_events SET operation = 'b' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	_, err = hmis(t, "audit", "verify")
	if err == nil || !strings.Contains(err.Error(), "seq 3") || !strings.Contains(err.Error(), audit.ReasonTruncated) {
		t.Fatalf("audit verify must see the cut-off tail: %v", err)
	}
	t.Setenv("HMIS_TOKEN_SECRET", "cli-test-secret-cli-test-secret-0123")

	// The keys of the data at rest, with the demo's values encrypted.
	out, err = hmis(t, "keys", "status")
	if err != nil || !strings.Contains(out, "(primary): ") || strings.Contains(out, "plaintext") {
		t.Fatalf("keys status: %v %q", err, out)
	}
	out, err = hmis(t, "keys", "rotate")
	if err != nil || !strings.Contains(out, "new primary data key") || !strings.Contains(out, "values re-encrypted") {
		t.Fatalf("keys rotate: %v %q", err, out)
	}
	if _, err = hmis(t, "keys", "retire"); !errors.Is(err, crypt.ErrTooSoon) {
		t.Fatalf("keys retire right after a rotation must wait for the other servers: %v", err)
	}
	out, err = hmis(t, "keys", "status")
	if err != nil || strings.Count(out, "data key") != 2 || !strings.Contains(out, ": 0 values") {
		t.Fatalf("keys status after rotating: %v %q", err, out)
	}
	if _, err = hmis(t, "keys", "rewrap"); err == nil {
		t.Fatal("keys rewrap without the new key must fail")
	}
	// The flag after the subcommand, as the README writes it; then the data
	// opens with the new key only.
	newKey := filepath.Join(t.TempDir(), "new.key")
	newKeyText, err := crypt.NewMasterKeyText()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newKey, []byte(newKeyText), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err = hmis(t, "keys", "rewrap", "--new-master-key-file", newKey); err != nil || !strings.Contains(out, "wrapped with the new master key") {
		t.Fatalf("keys rewrap --new-master-key-file: %v %q", err, out)
	}
	if _, err = hmis(t, "keys", "status"); err == nil {
		t.Fatal("keys status with the old master key after a rewrap must fail")
	}
	t.Setenv("HMIS_MASTER_KEY", "")
	t.Setenv("HMIS_MASTER_KEY_FILE", newKey)
	if out, err = hmis(t, "keys", "status"); err != nil || !strings.Contains(out, "(primary): ") {
		t.Fatalf("keys status with the new master key: %v %q", err, out)
	}

	if out, err = hmis(t, "config"); err != nil || !strings.Contains(out, "| `HMIS_DATABASE_URL` |") {
		t.Fatalf("config: %v %q", err, out)
	}
	if _, err = hmis(t, "frobnicate"); err == nil {
		t.Fatal("an unknown command must fail")
	}
}

// TestCommandLineAsANewcomerTypesIt: --help lists the commands and
// succeeds; a flag before the command no longer turns it into serve; an
// argument no command takes is refused instead of ignored.
func TestCommandLineAsANewcomerTypesIt(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"--help"}, &out, &errOut); err != nil {
		t.Fatalf("--help: %v", err)
	}
	// Asked-for help is output, so that hmis --help | less shows it.
	for _, want := range []string{"serve", "migrate", "seed", "audit verify", "config", "roles", "version", "-demo", "-addr"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %q on stdout:\n%s", want, out.String())
		}
	}
	if errOut.Len() > 0 {
		t.Errorf("--help wrote to stderr: %q", errOut.String())
	}
	t.Setenv("HMIS_TOKEN_SECRET", "")
	if out, err := hmis(t, "--demo", "version"); err != nil || !strings.HasPrefix(out, "hmis ") {
		t.Fatalf("a flag before the command: %v %q", err, out)
	}
	// The flags of a two-word command may follow it as well; audit verify
	// needs no token secret, demo or not.
	t.Setenv("HMIS_DATABASE_URL", "")
	t.Setenv("HMIS_SQLITE_PATH", filepath.Join(t.TempDir(), "verify.db"))
	t.Setenv("HMIS_AUDIT_CHECKPOINT_FILE", "")
	if _, err := hmis(t, "seed", "--demo"); err != nil {
		t.Fatalf("seed --demo: %v", err)
	}
	if out, err := hmis(t, "audit", "verify", "--demo"); err != nil || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify --demo: %v %q", err, out)
	}
	for _, args := range [][]string{{"--demo", "audit", "frobnicate"}, {"audit", "verify", "now"}, {"serve", "now"}, {"audit"}, {"--demo", "frobnicate"}, {"--no-such-flag"}} {
		if _, err := hmis(t, args...); err == nil {
			t.Errorf("hmis %v must be refused", args)
		}
	}
}

// TestREADMEConfigurationTable keeps the README's table of variables the one
// `hmis config` prints.
func TestREADMEConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), config.Markdown()) {
		t.Fatal("README.md's configuration table is stale: paste the output of `go run . config`")
	}
}

// TestREADMERoleTable keeps the README's role table the one `hmis roles`
// computes from the policy, so the policy is the only place a rule is written.
func TestREADMERoleTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	table, err := roleTable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "<!-- role-table:start -->\n"+table+"<!-- role-table:end -->") {
		t.Fatal("README.md's role table is stale: paste the output of `go run . roles` between the role-table markers")
	}
}

// TestDemoTOTP: `hmis totp` prints the demo secret's current code for a
// demo user whose role requires a second factor, and nothing for anyone
// else; the demo seed gives those users that secret.
func TestDemoTOTP(t *testing.T) {
	out, err := hmis(t, "totp", "doctor")
	code := strings.TrimSpace(out)
	if err != nil || len(code) != 6 {
		t.Fatalf("hmis totp doctor: %q, %v", out, err)
	}
	now := time.Now()
	valid := false
	for _, at := range []time.Time{now.Add(-30 * time.Second), now, now.Add(30 * time.Second)} {
		c, _ := auth.TOTPCode(demo.TOTPSecret, at)
		valid = valid || c == code
	}
	if !valid {
		t.Fatalf("hmis totp doctor printed %s, not a current code of the demo secret", code)
	}
	for _, args := range [][]string{{"totp", "nurse"}, {"totp", "someone"}, {"totp"}, {"totp", "doctor", "admin"}} {
		if out, err := hmis(t, args...); err == nil {
			t.Errorf("hmis %v: %q, want an error", args, out)
		}
	}
}

// TestPolicyCheckCommand: hmis policy check passes the built-in policy's
// directory and refuses a file with a typo'd coordinate and a lockout of
// admin, naming each problem, as the API would refuse the change.
func TestPolicyCheckCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"policy", "check", "policies"}, &out, &errOut); err != nil {
		t.Fatalf("built-in policy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "policy ok") {
		t.Errorf("no verdict: %s", out.String())
	}
	bad := filepath.Join(t.TempDir(), "policy.csv")
	if err := os.WriteFile(bad, []byte("p, admin, Query.accessPolicy, allow\np, nurse, Patient.famliyName, allow\ng, nurse, signed_in\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := run([]string{"policy", "check", bad}, &out, &errOut)
	if err == nil {
		t.Fatalf("bad policy passed:\n%s", out.String())
	}
	for _, want := range []string{"Patient.famliyName is no GraphQL coordinate", "role signed_in has no rule"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	if err := os.WriteFile(bad, []byte("p, nurse, Patient.familyName, allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"policy", "check", bad}, &out, &errOut); err == nil || !strings.Contains(out.String(), "admin role would lose Query.accessPolicy") {
		t.Errorf("a policy without admin's powers: %v\n%s", err, out.String())
	}
}
