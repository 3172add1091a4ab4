// Package app assembles a server process from its configuration: the
// store, cache, broker, services and HTTP handler, and runs it.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/hmis-dev/hmis/internal/accesspolicy"
	"github.com/hmis-dev/hmis/internal/admission"
	"github.com/hmis-dev/hmis/internal/attendance"
	"github.com/hmis-dev/hmis/internal/careaccess"
	"github.com/hmis-dev/hmis/internal/careplans"
	"github.com/hmis-dev/hmis/internal/charges"
	"github.com/hmis-dev/hmis/internal/notes"
	"github.com/hmis-dev/hmis/internal/patientbilling"
	"github.com/hmis-dev/hmis/internal/payprovider"
	"github.com/hmis-dev/hmis/internal/payroll"
	"github.com/hmis-dev/hmis/internal/prescribing"
	"github.com/hmis-dev/hmis/internal/referrals"
	"github.com/hmis-dev/hmis/internal/reports"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hmis-dev/hmis/graph"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/cache"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/console"
	"github.com/hmis-dev/hmis/internal/crypt"
	"github.com/hmis-dev/hmis/internal/demo"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/formulary"
	"github.com/hmis-dev/hmis/internal/httpapi"
	"github.com/hmis-dev/hmis/internal/insurance"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/labhl7"
	"github.com/hmis-dev/hmis/internal/leave"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/metrics"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/pharmacy"
	"github.com/hmis-dev/hmis/internal/rostering"
	"github.com/hmis-dev/hmis/internal/scheduling"
	"github.com/hmis-dev/hmis/internal/staffing"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/policies"
)

// App is one server process's parts.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	Store    *store.Store
	Cache    cache.Cache
	Broker   events.Broker
	Relay    *events.Relay
	Enforcer *authz.Enforcer
	Auth     *auth.Service
	Trail    *audit.Trail
	Handler  http.Handler
	// Scheduling runs the no-show sweeper beside the HTTP server.
	Scheduling *scheduling.Service
	Pharmacy   *pharmacy.Service
	Charges    *charges.Service
	// Instruments takes lab analyzers' HL7 v2 messages.
	Instruments *labhl7.Service
	// Policy keeps the access policy's versions and this process's
	// enforcer on the one in force.
	Policy         *accesspolicy.Service
	policyWatcher  *accesspolicy.Watcher
	stopPolicyPoll context.CancelFunc
	policyPollDone chan struct{}
	redis          *redis.Client
}

// Open connects to the database and, if configured, Redis, migrates the
// schema, and builds the services and the handler.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	secret := []byte(cfg.TokenSecret)
	if len(secret) == 0 && cfg.Demo {
		// Demo only: tokens then last as long as the process.
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		log.Warn("HMIS_TOKEN_SECRET is not set; demo mode signs tokens with a random secret")
	}
	if len(secret) < auth.MinSecretLength {
		return nil, fmt.Errorf("HMIS_TOKEN_SECRET must be set to at least %d bytes outside demo mode (try: openssl rand -hex 32)", auth.MinSecretLength)
	}
	auditKeys, err := AuditKeys(cfg, true, log)
	if err != nil {
		return nil, err
	}
	masterKey, err := MasterKey(cfg, true, log)
	if err != nil {
		return nil, err
	}
	baseline, err := policies.FromPath(cfg.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("HMIS_POLICY_FILE: %w", err)
	}
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	if cfg.PolicyFile != "" {
		if _, errs := authz.CheckPolicy(policies.Model, baseline, schema); len(errs) > 0 {
			return nil, fmt.Errorf("HMIS_POLICY_FILE %s: %w", cfg.PolicyFile, errors.Join(errs...))
		}
	}
	enforcer, err := authz.NewEnforcer(policies.Model, baseline)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Enforcer: enforcer}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if a.Store, err = store.Open(cfg.DatabaseURL, cfg.SQLitePath); err != nil {
		return nil, err
	}
	authz.InstallRowScope(a.Store.Client, enforcer)
	audit.InstallTracking(a.Store.Client)
	audit.ProtectAppendOnly(a.Store.Client)
	pharmacy.ProtectLedger(a.Store.Client)
	ledger.ProtectJournal(a.Store.Client)
	payroll.AuditReads(a.Store.Client)
	if err := a.Store.Migrate(ctx); err != nil {
		return nil, err
	}
	// The version of the policy in force is in the database once an admin
	// changed it; the built-in (or file) policy is version 0.
	a.Policy = accesspolicy.NewService(a.Store, enforcer, policies.Model, baseline, schema, log)
	if err := a.Policy.Sync(ctx); err != nil {
		return nil, err
	}
	if _, err := a.Store.UnlockKeys(ctx, masterKey); err != nil {
		return nil, err
	}
	// Reference data every install needs, demo or not.
	if err := ehr.SeedICD10(auth.SystemContext(ctx), a.Store.Client); err != nil {
		return nil, err
	}
	if err := lab.SeedCatalog(auth.SystemContext(ctx), a.Store.Client); err != nil {
		return nil, err
	}
	if err := formulary.Seed(auth.SystemContext(ctx), a.Store.Client); err != nil {
		return nil, err
	}
	if err := ledger.Seed(auth.SystemContext(ctx), a.Store.Client); err != nil {
		return nil, err
	}
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("HMIS_REDIS_URL: %w", err)
		}
		a.redis = redis.NewClient(opts)
		if err := a.redis.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("connect to redis: %w", err)
		}
		a.Cache = cache.NewRedis(a.redis, cfg.RedisPrefix)
		if a.policyWatcher, err = accesspolicy.NewRedisWatcher(ctx, a.redis, cfg.RedisPrefix); err != nil {
			return nil, fmt.Errorf("redis: access policy watcher: %w", err)
		}
		a.Policy.Watch(a.policyWatcher)
		a.Broker = events.NewRedisBroker(a.redis, cfg.RedisPrefix, int64(cfg.EventRetention))
	} else {
		a.Cache = cache.NewMemory()
		mb := events.NewMemoryBroker(cfg.EventRetention)
		a.Broker = mb
		// The in-process broker starts empty; what it published before a
		// restart is in the outbox, and clients resume from it.
		if err := events.Restore(auth.SystemContext(ctx), a.Store, mb); err != nil {
			return nil, err
		}
	}
	// The watcher's message is the fast way another instance's change
	// arrives; the poll catches a missed one, and is the only way without Redis.
	pollCtx, stopPoll := context.WithCancel(context.WithoutCancel(ctx))
	a.stopPolicyPoll = stopPoll
	a.policyPollDone = make(chan struct{})
	go func() {
		defer close(a.policyPollDone)
		a.Policy.Poll(pollCtx, cfg.PolicyPollInterval)
	}()
	a.Relay = events.NewRelay(a.Store, a.Broker, log)
	// Every transaction that recorded events pokes the relay as it commits.
	a.Store.OnEventsCommitted(a.Relay.Poke)
	a.Auth, err = auth.NewService(auth.Config{
		Secret:             secret,
		AccessTokenTTL:     cfg.AccessTokenTTL,
		RefreshTokenTTL:    cfg.RefreshTokenTTL,
		MaxFailuresPerUser: cfg.LoginMaxFailures,
		MaxFailuresPerAddr: cfg.LoginMaxFailuresPerAddr,
		LockoutWindow:      cfg.LoginLockout,
		IsRole:             enforcer.IsRole,
		RequiresMFA: func(roles []string) bool {
			return enforcer.Allows(&auth.Viewer{Roles: roles}, auth.RequireMFAObject)
		},
		MFAIssuer:       cfg.MFAIssuer,
		MFAChallengeTTL: cfg.MFAChallengeTTL,
	}, a.Store, a.Cache)
	if err != nil {
		return nil, err
	}
	care := careaccess.NewService(a.Store, cfg.BreakGlassTTL, enforcer.Now,
		func(v *auth.Viewer) bool { return enforcer.ScopeOf(v) == authz.CarePatients })
	a.Trail, err = audit.NewTrail(a.Store, audit.Options{
		Keys:           auditKeys,
		CheckpointFile: cfg.AuditCheckpointPath(),
		SealInterval:   cfg.AuditSealInterval,
		Log:            log,
		Mark:           care.Mark,
	})
	if err != nil {
		return nil, err
	}
	a.Trail.Start()
	a.Scheduling = scheduling.NewService(a.Store, cfg.Location())
	a.Pharmacy = pharmacy.NewService(a.Store, cfg.Location())
	books := ledger.NewService(a.Store, cfg.Location())
	a.Charges = charges.NewService(a.Store, cfg.Location(), cfg.DrugMarkupPercent, books)
	a.Charges.SetTaxRate(cfg.InvoiceTaxBasisPoints)
	claims := insurance.NewService(a.Store, cfg.Location())
	claims.OnRemitted(a.Charges.PostRemittance)
	payOpts, err := PaymentOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	payRules, err := payroll.ParseRules(cfg.PayrollOvertimePercent, cfg.PayrollWeeklyHours,
		cfg.PayrollNightAllowance, cfg.PayrollOnCallAllowance, cfg.PayrollTaxBands)
	if err != nil {
		return nil, err
	}
	allWorkforce := func(v *auth.Viewer) bool { return enforcer.Allows(v, authz.AllWorkforceObject) }
	var knownDocuments map[string]string
	if cfg.KnownDocumentsFile != "" {
		if knownDocuments, err = httpapi.LoadKnownDocuments(cfg.KnownDocumentsFile); err != nil {
			return nil, fmt.Errorf("HMIS_KNOWN_DOCUMENTS_FILE: %w", err)
		}
	}
	labs := lab.NewService(a.Store, cfg.Location())
	a.Instruments = labhl7.NewService(a.Store, labs, a.Auth)
	a.Handler = httpapi.New(httpapi.Deps{
		Resolver: &graph.Resolver{
			Client:         a.Store.Client,
			Auth:           a.Auth,
			Allows:         enforcer.Allows,
			Patients:       patients.NewService(a.Store),
			Scheduling:     a.Scheduling,
			Admission:      admission.NewService(a.Store),
			EHR:            ehr.NewService(a.Store, cfg.Location()),
			Notes:          notes.NewService(a.Store),
			Prescribing:    prescribing.NewService(a.Store),
			Formulary:      formulary.NewService(a.Store),
			CarePlans:      careplans.NewService(a.Store),
			Referrals:      referrals.NewService(a.Store),
			Lab:            labs,
			Instruments:    a.Instruments,
			CareAccess:     care,
			Pharmacy:       a.Pharmacy,
			Ledger:         books,
			Insurance:      claims,
			Charges:        a.Charges,
			PatientBilling: patientbilling.NewService(a.Store, a.Charges, payOpts),
			Staffing:       staffing.NewService(a.Store, a.Auth, enforcer.IsRole, cfg.Location()),
			Rostering: rostering.NewService(a.Store, cfg.Location(), time.Duration(cfg.RosterMinRestHours)*time.Hour,
				func(v *auth.Viewer) bool { return enforcer.Allows(v, rostering.AnyDepartmentObject) }),
			Broker:     a.Broker,
			Payroll:    payroll.NewService(a.Store, books, payRules, cfg.Location()),
			Leave:      leave.NewService(a.Store, cfg.Location(), cfg.LeaveDefaultDays, allWorkforce),
			Attendance: attendance.NewService(a.Store, cfg.Location(), cfg.AttendanceMatchWindow, cfg.AttendanceGraceMinutes, allWorkforce),
			Reports:    reports.NewService(a.Store, a.Cache, enforcer.Allows, cfg.Location(), cfg.ReportCacheTTL, secret),
			Policy:     a.Policy,
		},
		Auth:         a.Auth,
		Enforcer:     enforcer,
		Trail:        a.Trail,
		Metrics:      metrics.New(a.Store.DB, a.Store.Statements),
		Log:          log,
		Location:     cfg.Location(),
		HospitalName: cfg.HospitalName,
		Ready:        a.ready,
		Cache:        a.Cache,
	}, httpapi.Options{
		MaxPageSize:       cfg.MaxPageSize,
		DefaultPageSize:   cfg.DefaultPageSize,
		DepthLimit:        cfg.QueryDepthLimit,
		ComplexityLimit:   cfg.ComplexityLimit,
		ListWeight:        cfg.ListWeight,
		FieldLimit:        cfg.FieldLimit,
		RootFieldLimit:    cfg.RootFieldLimit,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		MaxVariablesBytes: cfg.MaxVariablesBytes,
		MaxResponseBytes:  cfg.MaxResponseBytes,
		RequestTimeout:    cfg.RequestTimeout,
		GraphiQL:          cfg.ServeGraphiQL(),
		Examples:          cfg.Demo,
		Introspection:     cfg.IntrospectionPolicy(),
		TrustedProxies:    cfg.TrustedProxies,
		// How often an idle WebSocket looks for the end of its session.
		SessionCheckInterval: cfg.WSSessionCheck,
		PersistedQueryTTL:    cfg.PersistedQueryTTL,
		KnownDocuments:       knownDocuments,
		FHIRBaseURL:          cfg.FHIRBaseURL,
		FHIRMRNSystem:        cfg.FHIRMRNSystem,
	})
	ok = true
	return a, nil
}

func (a *App) ready(ctx context.Context) error {
	if err := a.Store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := a.Broker.Ping(ctx); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

// SeedDemo seeds the demo hospital into an empty database and prints the
// demo logins to w.
func (a *App) SeedDemo(ctx context.Context, w io.Writer) error {
	if err := demo.Seed(ctx, a.Store, a.Config.DemoPassword, time.Now()); err != nil {
		return err
	}
	if err := demo.SeedTOTP(ctx, a.Store, a.RequiresMFA, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDemo logins (password %q):\n", a.Config.DemoPassword)
	for _, l := range demo.Logins {
		fmt.Fprintf(w, "  %-19s role %s\n", l.Username, l.Role)
	}
	if mfa := demo.MFALogins(a.RequiresMFA); len(mfa) > 0 {
		fmt.Fprintf(w, "\nThese roles sign in with a second factor (login, then verifyMfa with a code):\n ")
		for _, l := range mfa {
			fmt.Fprintf(w, " %s", l.Username)
		}
		fmt.Fprintf(w, "\nTheir demo TOTP secret is %s: add it to an authenticator app, or run\n`hmis totp <user>` (go run . totp doctor) for the current code.\n", demo.TOTPSecret)
	}
	fmt.Fprintln(w)
	return nil
}

// RequiresMFA reports whether the policy makes role sign in with a second factor.
func (a *App) RequiresMFA(role string) bool {
	return a.Enforcer.Allows(&auth.Viewer{Roles: []string{role}}, auth.RequireMFAObject)
}

// RunRelay publishes committed events until ctx ends.
func (a *App) RunRelay(ctx context.Context) { a.Relay.Run(auth.SystemContext(ctx)) }

// Serve runs the relay and the HTTP server until ctx ends, then shuts down
// gracefully.
func (a *App) Serve(ctx context.Context) error {
	relayCtx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	go a.RunRelay(relayCtx)
	go a.Scheduling.SweepNoShows(relayCtx, time.Minute, a.Log)
	go a.Pharmacy.SweepExpiring(relayCtx, time.Hour, a.Log)
	// Charges are captured from the broker, each topic from the cursor
	// billing saved, so a restart resumes where the last process stopped.
	go a.Charges.Consume(auth.SystemContext(relayCtx), a.Broker, a.Log)
	go a.Charges.SweepBedDays(auth.SystemContext(relayCtx), time.Hour, a.Log)
	mllpCtx, stopMLLP := context.WithCancel(ctx)
	mllpDone, err := a.serveMLLP(mllpCtx)
	if err != nil {
		stopMLLP()
		return err
	}
	defer func() { stopMLLP(); <-mllpDone }()
	srv := &http.Server{
		Addr:              a.Config.Addr,
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: subscriptions stream for as long as they live.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if a.Config.TLSCertFile != "" {
			err = srv.ListenAndServeTLS(a.Config.TLSCertFile, a.Config.TLSKeyFile)
		} else {
			err = srv.ListenAndServe()
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	host := a.Config.Addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	scheme := "http"
	if a.Config.TLSCertFile != "" {
		scheme = "https"
	}
	attrs := []any{"graphql", scheme + "://" + host + "/graphql"}
	if a.Config.ServeGraphiQL() {
		attrs = append(attrs, "graphiql", scheme+"://"+host+"/")
	}
	if a.Config.Demo {
		attrs = append(attrs, "ward_dashboard", scheme+"://"+host+console.DashboardPath)
	}
	a.Log.Info("HMIS is serving", attrs...)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// serveMLLP starts the analyzers' MLLP listener when HMIS_MLLP_ADDR is set;
// it stops with ctx, after the messages in progress, and the channel
// closes then.
func (a *App) serveMLLP(ctx context.Context) (<-chan struct{}, error) {
	done := make(chan struct{})
	if a.Config.MLLPAddr == "" {
		close(done)
		return done, nil
	}
	ln, err := net.Listen("tcp", a.Config.MLLPAddr)
	if err != nil {
		return nil, fmt.Errorf("HMIS_MLLP_ADDR: %w", err)
	}
	m := &labhl7.MLLP{Service: a.Instruments, Trail: a.Trail, Log: a.Log}
	go func() {
		defer close(done)
		if err := m.Serve(ctx, ln); err != nil {
			a.Log.Error("MLLP listener stopped", "err", err)
		}
	}()
	a.Log.Info("MLLP listener for lab analyzers", "addr", ln.Addr().String())
	return done, nil
}

// PaymentOptions are the patient app's payment provider and the providers'
// callback secrets, from HMIS_PAYMENT_PROVIDER and
// HMIS_PAYMENT_CALLBACK_SECRETS.
func PaymentOptions(cfg config.Config, log *slog.Logger) (patientbilling.Options, error) {
	secrets, err := payprovider.ParseSecrets(cfg.PaymentCallbackSecrets)
	if err != nil {
		return patientbilling.Options{}, fmt.Errorf("HMIS_PAYMENT_CALLBACK_SECRETS: %w", err)
	}
	o := patientbilling.Options{Secrets: secrets}
	name := cfg.PaymentProvider
	if name == "" && cfg.Demo {
		name = payprovider.SimulatedName
	}
	switch name {
	case "":
		return o, nil
	case payprovider.SimulatedName:
		o.Provider = payprovider.Simulated{}
		// Completing a payment from the API is a demo's shortcut; a
		// staging server with the simulated provider is completed by
		// callbacks signed with its secret, like a real provider's.
		o.AllowSimulation = cfg.Demo
	default:
		return o, fmt.Errorf("HMIS_PAYMENT_PROVIDER: unknown provider %q", name)
	}
	if secrets[name] == nil {
		if !cfg.Demo {
			return o, fmt.Errorf("HMIS_PAYMENT_CALLBACK_SECRETS must hold a secret for %s, the payment provider (try: %s:$(openssl rand -hex 32))", name, name)
		}
		secrets[name] = payprovider.RandomSecret()
		log.Warn("HMIS_PAYMENT_CALLBACK_SECRETS has no secret for the simulated provider; demo mode signs its callbacks with a random one")
	}
	return o, nil
}

// AuditKeys returns the audit keyring: HMIS_AUDIT_KEY, or the key file of
// the development defaults (see config.AuditKeyFile), made if create is set
// and it does not exist yet.
func AuditKeys(cfg config.Config, create bool, log *slog.Logger) (*audit.Keyring, error) {
	if cfg.AuditKey != "" {
		kr, err := audit.ParseKeyring(cfg.AuditKey)
		if err != nil {
			return nil, fmt.Errorf("HMIS_AUDIT_KEY: %w", err)
		}
		return kr, nil
	}
	path, allowed := cfg.AuditKeyFile()
	if !allowed {
		return nil, errors.New(`HMIS_AUDIT_KEY must be set outside demo mode: "keyid:base64 secret" of at least 32 bytes, kept out of the database's reach, the same on every server process (try: HMIS_AUDIT_KEY="a1:$(openssl rand -base64 32)")`)
	}
	kr, created, err := audit.LoadKeyFile(path, create)
	if err != nil {
		return nil, fmt.Errorf("%w (or set HMIS_AUDIT_KEY)", err)
	}
	if created {
		log.Warn("HMIS_AUDIT_KEY is not set; created an audit key file beside the database, which protects the trail only from those who cannot read that file", "file", path)
	}
	return kr, nil
}

// MasterKey returns the key-encryption key of the data at rest:
// HMIS_MASTER_KEY, HMIS_MASTER_KEY_FILE, or the key file of the development
// defaults (see config.MasterKeyPath), made if create is set and it does not
// exist yet.
func MasterKey(cfg config.Config, create bool, log *slog.Logger) (crypt.KEK, error) {
	if cfg.MasterKey != "" {
		k, err := crypt.ParseMasterKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("HMIS_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	path, mayCreate := cfg.MasterKeyPath()
	if path == "" {
		return nil, errors.New(`HMIS_MASTER_KEY (or HMIS_MASTER_KEY_FILE) must be set outside demo mode: 32 bytes in base64 that wrap the keys encrypting patient data at rest, kept out of the database's reach, the same on every server process (try: HMIS_MASTER_KEY="$(openssl rand -base64 32)"); without it the server does not start`)
	}
	k, created, err := crypt.LoadMasterKeyFile(path, create && mayCreate)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("HMIS_MASTER_KEY is not set; created a master key file beside the database to encrypt sensitive fields at rest, which protects them only from those who cannot read that file", "file", path)
	}
	return k, nil
}

// Close seals the audit trail's pending rows and releases the database,
// Redis and broker.
func (a *App) Close() {
	if a.stopPolicyPoll != nil {
		a.stopPolicyPoll()
		<-a.policyPollDone
	}
	if a.policyWatcher != nil {
		a.policyWatcher.Close()
	}
	if a.Trail != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := a.Trail.Close(ctx); err != nil {
			a.Log.Error("audit: sealing at shutdown failed; the next sealer will seal the rest", "err", err)
		}
		cancel()
	}
	if a.Broker != nil {
		a.Broker.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
}
