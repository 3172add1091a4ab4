// Package harness drives the real HTTP handler with real GraphQL documents,
// as a frontend would, for the API tests in the packages beside it (one per
// domain: platform, patients, scheduling, admission, ehr, care, lab).
//
// Each server gets a database and Redis prefix of its own (see
// internal/testenv): an SQLite file and the in-process broker by default,
// or PostgreSQL and Redis when HMIS_TEST_DATABASE_URL / HMIS_TEST_REDIS_URL
// are set. So tests call t.Parallel() unless they change process-wide state
// (t.Setenv) or depend on wall-clock deadlines tight enough that a busy
// machine would miss them.
//
// Start a server seeded with the demo hospital, and read its IDs:
//
//	s := harness.NewServer(t)                    // or NewServer(t, func(c *config.Config) { ... })
//	d := s.Demo()                                // d.Patients[0], d.Doctor, d.Nurse, d.Cardiology …
//	b := harness.NewBacking(t)                   // two instances of one service:
//	a, c := harness.NewServerOn(t, b), harness.NewServerOn(t, b)
//
// Make requests as a demo user (signed in once per server), with a token,
// or with extra headers from any goroutine:
//
//	var out struct{ Patients struct{ TotalCount int } }
//	s.As("doctor", `{ patients { totalCount } }`, nil).Decode(t, &out)
//	r := s.Do(token, doc, vars)                  // "" for anonymous
//	r, err := s.Send(header, token, doc, vars)   // never fails the test itself
//	harness.Must(t, r.HasCode("FORBIDDEN"), "…: %s", harness.Describe(r))
//	harness.WantBadInput(t, "what", r, "in.field")
//
// Subscribe over WebSocket, on either protocol (harness.WSProtocols):
//
//	f := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("doctor"), args)
//	b := &harness.Booker{T: t, S: s, User: "reception"}
//	harness.AwaitLive(t, func() string { return b.Book(d.Patients[3], d.Doctor) }, f)
//	ev := f.Next()                               // skips the probes AwaitLive made
//
// A domain's own subscription is a harness.Feed of its event type:
//
//	f := harness.Subscribe(t, s, proto, token, doc, args, func(ev myEvent) string { return ev.Subject.ID })
//
// and a raw connection is s.DialWS(t, proto), then c.Init(token),
// c.Start(doc, vars), c.Result(id) or c.Failure(id).
//
// Fixtures of the demo hospital used by several domains: Slot and
// BookingInput (appointments), s.Layout() and Admit (wards and beds),
// NewLabDesk (the lab's order-to-result steps, with EnsureLabCatalog),
// Credentials (a credential per role), AuditRows, Facts and PatientCount.
//
// Every root operation needs a probe in ProbeSets (probes.go), in its
// domain's map: the role matrix test in platform fails for an operation
// that has none.
package harness
