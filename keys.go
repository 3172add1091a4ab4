package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hmis-dev/hmis/internal/app"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/crypt"
	"github.com/hmis-dev/hmis/internal/store"
)

// keysCommand manages the keys of the data at rest. It needs the database
// and the master key only, and runs beside the servers: they pick up a
// rotated keyset within crypt.RefreshInterval.
func keysCommand(ctx context.Context, cfg config.Config, log *slog.Logger, sub, newMasterKeyFile string, stdout io.Writer) error {
	if (sub == "rewrap") != (newMasterKeyFile != "") {
		return errors.New("--new-master-key-file goes with hmis keys rewrap, and only there")
	}
	kek, err := app.MasterKey(cfg, false, log)
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
	kr, err := st.UnlockKeys(ctx, kek)
	if err != nil {
		return err
	}
	switch sub {
	case "rotate":
		id, err := kr.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new primary data key %d\n", id)
		rep, err := kr.Reencrypt(ctx)
		if err != nil {
			return fmt.Errorf("re-encrypting (run hmis keys rotate again to resume): %w", err)
		}
		fmt.Fprintln(stdout, rep)
		fmt.Fprintf(stdout, "in %s, when every server has the new key, run hmis keys retire to drop the old ones\n", 2*crypt.RefreshInterval)
	case "retire":
		rep, err := kr.Retire(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, rep)
		fmt.Fprintf(stdout, "retired data keys: %v\n", rep.Retired)
	case "rewrap":
		newKEK, _, err := crypt.LoadMasterKeyFile(newMasterKeyFile, false)
		if err != nil {
			return err
		}
		if err := kr.Rewrap(ctx, newKEK); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "keysets wrapped with the new master key: restart every server with it (HMIS_MASTER_KEY or HMIS_MASTER_KEY_FILE) before the next rotation")
	case "status":
		ids, primary := kr.Keys()
		used, err := kr.Usage(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			mark := ""
			if id == primary {
				mark = " (primary)"
			}
			fmt.Fprintf(stdout, "data key %d%s: %d values\n", id, mark, used[id])
		}
		if used[0] > 0 {
			fmt.Fprintf(stdout, "plaintext from before encryption: %d values (hmis keys rotate encrypts them)\n", used[0])
		}
	}
	return nil
}
