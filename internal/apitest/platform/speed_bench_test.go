package platform

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/graph"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// The speed benchmarks put HMIS beside a hand-written harness.Server doing the same
// work with database/sql against the same database, and report the ratio of
// their throughputs: a number that means the same on a laptop and on a
// harness.Server, on SQLite and on PostgreSQL.
//
// Both sides are HTTP servers in this process, driven by the same client
// with speedWorkers requests in flight (a load tool's connections). They
// take turns in batches of speedBatch requests each, so a neighbour's load
// on a shared machine falls on both alike instead of on whichever ran
// second. Both authenticate the bearer token through the same auth.Service;
// the hand-written side writes no audit row, HMIS writes one per request.
//
//	go test -run X -bench Speed -benchtime 20x ./internal/apitest/platform
//
// Metrics per request: hmis-req/s and sql-req/s, ratio (HMIS over SQL),
// CPU microseconds of this process (client, harness.Server and driver; PostgreSQL's
// own CPU is not in it), allocations, and HMIS's SQL statements.

const (
	speedPatients    = 10_000
	speedFamilies    = 500 // 20 patients per family name
	speedProviders   = 50
	speedWorkers     = 16
	speedBatch       = 160
	speedAppointment = 30 * time.Minute
)

// speedData is what speedSeed inserted.
type speedData struct {
	// from is the instant "next appointments" count from: each patient has
	// one appointment before it and four after.
	from       time.Time
	families   []string
	patients   []string
	providers  []string
	department string
}

// speedSeed bulk-inserts speedPatients patients, each with five
// appointments with one of speedProviders doctors and two allergies.
func speedSeed(b *testing.B, s *harness.Server) speedData {
	b.Helper()
	return speedSeedN(b, s, speedPatients, speedFamilies, "Fam")
}

// speedSeedN is speedSeed for n patients spread over families family
// names (prefix and a number), patient i in family i % families; each call
// adds speedProviders doctors of its own.
func speedSeedN(b testing.TB, s *harness.Server, n, families int, prefix string) speedData {
	b.Helper()
	ctx := auth.SystemContext(context.Background())
	c := s.App.Store.Client
	dep, err := c.Department.Query().Where(department.Code("GEN")).Only(ctx)
	if err != nil {
		b.Fatal(err)
	}
	doctor, err := c.User.Query().Where(user.Username("doctor")).QueryStaff().Only(ctx)
	if err != nil {
		b.Fatal(err)
	}
	d := speedData{from: time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour), department: dep.ID}
	staffs, err := c.Staff.MapCreateBulk(make([]struct{}, speedProviders), func(sc *ent.StaffCreate, i int) {
		sc.SetGivenName(fmt.Sprintf("Prov%02d", i)).SetFamilyName(fmt.Sprintf("Doctor%02d", i)).
			SetKind(staff.KindDOCTOR).SetDepartmentID(dep.ID)
	}).Save(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range staffs {
		d.providers = append(d.providers, st.ID)
	}
	for f := range families {
		d.families = append(d.families, fmt.Sprintf("%s%03d", prefix, f))
	}
	const batch = 500
	severities := []allergy.Severity{allergy.SeverityMILD, allergy.SeverityMODERATE, allergy.SeveritySEVERE}
	for start := 0; start < n; start += batch {
		size := min(batch, n-start)
		pats, err := c.Patient.MapCreateBulk(make([]struct{}, size), func(pc *ent.PatientCreate, j int) {
			i := start + j
			pc.SetMrn(fmt.Sprintf("%s%07d", prefix, i)).SetGivenName(fmt.Sprintf("Given%05d", i)).
				SetFamilyName(d.families[i%families]).SetSex(patient.SexOTHER).
				SetBirthDate(time.Date(1950+i%60, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC))
		}).Save(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, len(pats))
		for j, p := range pats {
			ids[j] = p.ID
		}
		d.patients = append(d.patients, ids...)
		if err := c.Appointment.MapCreateBulk(make([]struct{}, 5*size), func(ac *ent.AppointmentCreate, k int) {
			j, n := k/5, k%5
			// n = 0 lies before from; 1…4 after it, a day apart, at a
			// time of day of the patient's own.
			at := d.from.Add(time.Duration(n-1)*24*time.Hour + time.Duration((start+j)%96)*15*time.Minute)
			ac.SetPatientID(ids[j]).SetProviderID(d.providers[(start+j+n)%speedProviders]).SetDepartmentID(dep.ID).
				SetStartAt(at).SetEndAt(at.Add(speedAppointment))
		}).Exec(ctx); err != nil {
			b.Fatal(err)
		}
		// The demo doctor, who runs the portal's queries, cares for them all.
		if err := c.CareTeamMember.MapCreateBulk(ids, func(cc *ent.CareTeamMemberCreate, j int) {
			cc.SetPatientID(ids[j]).SetStaffID(doctor.ID).SetRole(careteammember.RoleATTENDING).SetSince(d.from)
		}).Exec(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Allergy.MapCreateBulk(make([]struct{}, 2*size), func(ac *ent.AllergyCreate, k int) {
			j := k / 2
			ac.SetPatientID(ids[j]).SetSubstance(fmt.Sprintf("Substance%d", (start+k)%37)).
				SetCategory(allergy.CategoryDRUG).SetSeverity(severities[k%len(severities)])
		}).Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return d
}

// speedPortalQuery is a staff portal's search: the patients of a family
// name, each with their next three appointments and who they are with, and
// their allergies.
const speedPortalQuery = `query Portal($family: String!, $from: Time!) {
  patients(first: 20, where: {familyName: $family}) { edges { node {
    id mrn givenName familyName birthDate
    appointments(first: 3, where: {startAtGTE: $from}, orderBy: {field: START_AT}) {
      edges { node { id startAt status provider { id givenName familyName } } } }
    allergies { substance severity status } } } } }`

// speedPortal is the answer both sides give, in GraphQL's shape.
type speedPortal struct {
	Data struct {
		Patients struct {
			Edges []struct {
				Node speedPortalPatient `json:"node"`
			} `json:"edges"`
		} `json:"patients"`
	} `json:"data"`
}

type speedPortalPatient struct {
	ID           string `json:"id"`
	Mrn          string `json:"mrn"`
	GivenName    string `json:"givenName"`
	FamilyName   string `json:"familyName"`
	BirthDate    string `json:"birthDate"`
	Appointments struct {
		Edges []speedAppointmentEdge `json:"edges"`
	} `json:"appointments"`
	Allergies []speedAllergy `json:"allergies"`
}

type speedAppointmentEdge struct {
	Node struct {
		ID       string `json:"id"`
		StartAt  string `json:"startAt"`
		Status   string `json:"status"`
		Provider struct {
			ID         string `json:"id"`
			GivenName  string `json:"givenName"`
			FamilyName string `json:"familyName"`
		} `json:"provider"`
	} `json:"node"`
}

type speedAllergy struct {
	Substance string `json:"substance"`
	Severity  string `json:"severity"`
	Status    string `json:"status"`
}

// speedSQL is the hand-written server: database/sql on the HMIS database,
// the bearer token checked by the same auth.Service.
type speedSQL struct {
	db       *sql.DB
	auth     *auth.Service
	postgres bool
}

// q writes ? placeholders as PostgreSQL's $n where needed.
func (h *speedSQL) q(query string) string {
	if !h.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (h *speedSQL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	v, err := h.auth.Authenticate(r.Context(), token)
	if err != nil || v == nil {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	var out any
	switch r.URL.Path {
	case "/portal":
		var in struct{ Family, From string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		from, err := time.Parse(time.RFC3339, in.From)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err = h.portal(r.Context(), in.Family, from)
	case "/book":
		var in speedBooking
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err = h.book(r.Context(), in)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (h *speedSQL) portal(ctx context.Context, family string, from time.Time) (*speedPortal, error) {
	rows, err := h.db.QueryContext(ctx, h.q(`SELECT id, mrn, given_name, family_name, birth_date FROM patients
		WHERE family_name = ? ORDER BY id LIMIT 20`), family)
	if err != nil {
		return nil, err
	}
	out := &speedPortal{}
	byID := map[string]*speedPortalPatient{}
	var ids []any
	for rows.Next() {
		var p speedPortalPatient
		var birth time.Time
		if err := rows.Scan(&p.ID, &p.Mrn, &p.GivenName, &p.FamilyName, &birth); err != nil {
			rows.Close()
			return nil, err
		}
		p.BirthDate = birth.UTC().Format(time.DateOnly)
		p.Allergies = []speedAllergy{}
		p.Appointments.Edges = []speedAppointmentEdge{}
		out.Data.Patients.Edges = append(out.Data.Patients.Edges, struct {
			Node speedPortalPatient `json:"node"`
		}{p})
		ids = append(ids, p.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return out, err
	}
	for i := range out.Data.Patients.Edges {
		byID[out.Data.Patients.Edges[i].Node.ID] = &out.Data.Patients.Edges[i].Node
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	args := append(append([]any{}, ids...), from)
	rows, err = h.db.QueryContext(ctx, h.q(`SELECT a.id, a.patient_id, a.start_at, a.status, s.id, s.given_name, s.family_name
		FROM (SELECT id, patient_id, start_at, status, provider_id,
		             ROW_NUMBER() OVER (PARTITION BY patient_id ORDER BY start_at, id) AS n
		      FROM appointments WHERE patient_id IN (`+in+`) AND start_at >= ?) a
		JOIN staffs s ON s.id = a.provider_id
		WHERE a.n <= 3 ORDER BY a.patient_id, a.start_at, a.id`), args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e speedAppointmentEdge
		var patientID string
		var start time.Time
		if err := rows.Scan(&e.Node.ID, &patientID, &start, &e.Node.Status,
			&e.Node.Provider.ID, &e.Node.Provider.GivenName, &e.Node.Provider.FamilyName); err != nil {
			rows.Close()
			return nil, err
		}
		e.Node.StartAt = start.UTC().Format(time.RFC3339Nano)
		p := byID[patientID]
		p.Appointments.Edges = append(p.Appointments.Edges, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = h.db.QueryContext(ctx, h.q(`SELECT patient_id, substance, severity, status FROM allergies
		WHERE patient_id IN (`+in+`)`), ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a speedAllergy
		var patientID string
		if err := rows.Scan(&patientID, &a.Substance, &a.Severity, &a.Status); err != nil {
			return nil, err
		}
		p := byID[patientID]
		p.Allergies = append(p.Allergies, a)
	}
	return out, rows.Err()
}

// speedBooking is bookAppointment's input.
type speedBooking struct {
	PatientID  string `json:"patientId"`
	ProviderID string `json:"providerId"`
	StartAt    string `json:"startAt"`
	EndAt      string `json:"endAt"`
	Reason     string `json:"reason"`
}

type speedBooked struct {
	Data struct {
		BookAppointment struct {
			ID         string              `json:"id"`
			Status     string              `json:"status"`
			StartAt    string              `json:"startAt"`
			EndAt      string              `json:"endAt"`
			Patient    struct{ ID string } `json:"patient"`
			Provider   struct{ ID string } `json:"provider"`
			Department struct{ ID string } `json:"department"`
		} `json:"bookAppointment"`
	} `json:"data"`
}

// book makes scheduling.Service.Book's checks, under its locks, in one
// transaction: the IDs well formed, the times in order, the patient active
// and not merged, the provider an active doctor or nurse of a department,
// working then (no availability periods: the seeded providers have none)
// and not away, neither of them booked over the time; then the appointment
// and its outbox row.
func (h *speedSQL) book(ctx context.Context, in speedBooking) (*speedBooked, error) {
	start, err := time.Parse(time.RFC3339, in.StartAt)
	if err != nil {
		return nil, err
	}
	end, err := time.Parse(time.RFC3339, in.EndAt)
	if err != nil {
		return nil, err
	}
	start, end = start.UTC(), end.UTC()
	switch {
	case !globalid.Valid(in.PatientID, "pat"), !globalid.Valid(in.ProviderID, "stf"):
		return nil, fmt.Errorf("bad ID")
	case !end.After(start), end.Sub(start) > 8*time.Hour, start.Before(time.Now().Add(-time.Hour)):
		return nil, fmt.Errorf("bad times")
	case len(in.Reason) > 500:
		return nil, fmt.Errorf("reason too long")
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if h.postgres {
		keys := []string{"patient:" + in.PatientID, "provider:" + in.ProviderID}
		sort.Strings(keys)
		for _, k := range keys {
			f := fnv.New64a()
			f.Write([]byte(k))
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(f.Sum64())); err != nil {
				return nil, err
			}
		}
	}
	var status string
	var mergedInto sql.NullString
	if err := tx.QueryRowContext(ctx, h.q(`SELECT status, merged_into_id FROM patients WHERE id = ?`), in.PatientID).
		Scan(&status, &mergedInto); err != nil {
		return nil, err
	}
	if status != "ACTIVE" {
		return nil, fmt.Errorf("patient merged")
	}
	var active bool
	var kind string
	var departmentID sql.NullString
	if err := tx.QueryRowContext(ctx, h.q(`SELECT active, kind, department_id FROM staffs WHERE id = ?`), in.ProviderID).
		Scan(&active, &kind, &departmentID); err != nil {
		return nil, err
	}
	if !active || (kind != "DOCTOR" && kind != "NURSE") || departmentID.String == "" {
		return nil, fmt.Errorf("not a provider")
	}
	var periods int
	var rostered bool
	if err := tx.QueryRowContext(ctx, h.q(`SELECT count(*), EXISTS (SELECT 1 FROM roster_entries WHERE staff_id = ?)
		FROM provider_availabilities WHERE staff_id = ?`), in.ProviderID, in.ProviderID).Scan(&periods, &rostered); err != nil {
		return nil, err
	}
	if periods > 0 || rostered {
		return nil, fmt.Errorf("the benchmark's providers have no availability periods and no roster")
	}
	var clash string
	switch err := tx.QueryRowContext(ctx, h.q(`SELECT id FROM provider_time_offs WHERE staff_id = ? AND start_at < ? AND end_at > ? LIMIT 1`),
		in.ProviderID, end, start).Scan(&clash); err {
	case sql.ErrNoRows:
	case nil:
		return nil, fmt.Errorf("provider away")
	default:
		return nil, err
	}
	switch err := tx.QueryRowContext(ctx, h.q(`SELECT id FROM appointments WHERE status NOT IN ('CANCELLED', 'NO_SHOW')
		AND start_at < ? AND end_at > ? AND (provider_id = ? OR patient_id = ?) LIMIT 1`),
		end, start, in.ProviderID, in.PatientID).Scan(&clash); err {
	case sql.ErrNoRows:
	case nil:
		return nil, fmt.Errorf("double booking")
	default:
		return nil, err
	}
	now := time.Now().UTC()
	id := globalid.New("apt")
	if _, err := tx.ExecContext(ctx, h.q(`INSERT INTO appointments
		(id, created_at, updated_at, patient_id, provider_id, department_id, start_at, end_at, reason, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'BOOKED')`),
		id, now, now, in.PatientID, in.ProviderID, departmentID.String, start, end, in.Reason); err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(map[string]string{"appointmentId": id, "patientId": in.PatientID,
		"providerId": in.ProviderID, "departmentId": departmentID.String})
	if _, err := tx.ExecContext(ctx, h.q(`INSERT INTO outbox_events (id, topic, type, payload, created_at) VALUES (?, ?, ?, ?, ?)`),
		globalid.New("evt"), "appointments", "BOOKED", payload, now); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	out := &speedBooked{}
	a := &out.Data.BookAppointment
	a.ID, a.Status, a.StartAt, a.EndAt = id, "BOOKED", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano)
	a.Patient.ID, a.Provider.ID, a.Department.ID = in.PatientID, in.ProviderID, departmentID.String
	return out, nil
}

// speedRig is the two servers and the client that drives them.
type speedRig struct {
	s   *harness.Server
	sql *httptest.Server
	// stack is the fixed stack alone: the same generated schema and
	// resolvers over the same ent client, served by gqlgen's handler with
	// none of HMIS's extensions (no sign-in, limits, field guard, audit),
	// under the system context (no row scope). What HMIS adds is the
	// distance between it and HMIS; what the stack costs, the distance
	// between it and the hand-written SQL.
	stack  *httptest.Server
	client *http.Client
}

func newSpeedRig(b *testing.B, s *harness.Server) *speedRig {
	h := &speedSQL{db: s.App.Store.DB, auth: s.App.Auth, postgres: s.App.Store.Dialect == "postgres"}
	hs := httptest.NewServer(h)
	b.Cleanup(hs.Close)
	bare := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Client: s.App.Store.Client}}))
	bare.AddTransport(transport.POST{})
	bare.SetQueryCache(lru.New[*ast.QueryDocument](100))
	stack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bare.ServeHTTP(w, r.WithContext(auth.SystemContext(r.Context())))
	}))
	b.Cleanup(stack.Close)
	// Enough idle connections for every worker: the default keeps two,
	// and the rest would reconnect on every request.
	transport := &http.Transport{MaxIdleConnsPerHost: 2 * speedWorkers, MaxConnsPerHost: 2 * speedWorkers}
	b.Cleanup(transport.CloseIdleConnections)
	return &speedRig{s: s, sql: hs, stack: stack, client: &http.Client{Transport: transport}}
}

// post sends body and returns the harness.Response body; any error, HTTP or
// GraphQL, is returned as one.
func (r *speedRig) post(url, token string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"errors"`)) {
		return nil, fmt.Errorf("%s: %d %.300s", url, resp.StatusCode, out)
	}
	return out, nil
}

// speedSide is what one side cost over a benchmark.
type speedSide struct {
	requests    int64
	elapsed     time.Duration
	cpu         time.Duration
	allocs      uint64
	bytes       uint64
	statements  int64
	failedFirst error
}

// run sends n requests, speedWorkers at a time; do(i) sends the i-th.
func (side *speedSide) run(s *harness.Server, n int, do func(i int) error) {
	var next atomic.Int64
	var mu sync.Mutex
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU()
	stmts0 := s.App.Store.Statements()
	start := time.Now()
	var wg sync.WaitGroup
	for range speedWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					mu.Lock()
					if side.failedFirst == nil {
						side.failedFirst = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	side.elapsed += time.Since(start)
	side.cpu += processCPU() - cpu0
	side.statements += s.App.Store.Statements() - stmts0
	runtime.ReadMemStats(&ms1)
	side.allocs += ms1.Mallocs - ms0.Mallocs
	side.bytes += ms1.TotalAlloc - ms0.TotalAlloc
	side.requests += int64(n)
}

// report puts both sides' figures on b.
func speedReport(b *testing.B, hmis, hand *speedSide) {
	b.Helper()
	if hmis.failedFirst != nil || hand.failedFirst != nil {
		b.Fatalf("HMIS: %v; hand-written: %v", hmis.failedFirst, hand.failedFirst)
	}
	per := func(x float64, side *speedSide) float64 { return x / float64(side.requests) }
	hmisRate := float64(hmis.requests) / hmis.elapsed.Seconds()
	handRate := float64(hand.requests) / hand.elapsed.Seconds()
	b.ReportMetric(hmisRate, "hmis-req/s")
	b.ReportMetric(handRate, "sql-req/s")
	b.ReportMetric(hmisRate/handRate, "ratio")
	b.ReportMetric(per(float64(hmis.cpu.Microseconds()), hmis), "hmis-cpu-µs/req")
	b.ReportMetric(per(float64(hand.cpu.Microseconds()), hand), "sql-cpu-µs/req")
	b.ReportMetric(per(float64(hmis.allocs), hmis), "hmis-allocs/req")
	b.ReportMetric(per(float64(hand.allocs), hand), "sql-allocs/req")
	b.ReportMetric(per(float64(hmis.bytes), hmis), "hmis-B/req")
	b.ReportMetric(per(float64(hmis.statements), hmis), "hmis-stmts/req")
}

// BenchmarkSpeedPortalQuery: the portal's patient search (speedPortalQuery)
// over 10,000 patients, through HMIS — HTTP, limits, field guard, row
// scope, ent, the audit row of every request — and through hand-written
// SQL. One b.N is a batch of speedBatch requests on each side.
func BenchmarkSpeedPortalQuery(b *testing.B) {
	s := harness.NewServer(b)
	d := speedSeed(b, s)
	rig := newSpeedRig(b, s)
	token := s.Token("doctor")
	from := d.from.Format(time.RFC3339)
	hmisBodies := make([][]byte, len(d.families))
	handBodies := make([][]byte, len(d.families))
	for i, f := range d.families {
		hmisBodies[i], _ = json.Marshal(map[string]any{"query": speedPortalQuery,
			"variables": map[string]any{"family": f, "from": from}})
		handBodies[i], _ = json.Marshal(map[string]any{"family": f, "from": from})
	}
	// All sides answer alike, so they do the same work.
	for _, i := range []int{0, 7, speedFamilies - 1} {
		var viaHMIS, viaSQL, viaStack speedPortal
		for _, side := range []struct {
			url  string
			body []byte
			out  *speedPortal
		}{{rig.s.HTTP.URL + "/graphql", hmisBodies[i], &viaHMIS}, {rig.sql.URL + "/portal", handBodies[i], &viaSQL},
			{rig.stack.URL, hmisBodies[i], &viaStack}} {
			raw, err := rig.post(side.url, token, side.body)
			if err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(raw, side.out); err != nil {
				b.Fatal(err)
			}
			for j := range side.out.Data.Patients.Edges {
				a := side.out.Data.Patients.Edges[j].Node.Allergies
				sort.Slice(a, func(x, y int) bool { return a[x].Substance+a[x].Severity < a[y].Substance+a[y].Severity })
			}
		}
		hmisJSON, _ := json.Marshal(viaHMIS)
		sqlJSON, _ := json.Marshal(viaSQL)
		stackJSON, _ := json.Marshal(viaStack)
		if len(viaHMIS.Data.Patients.Edges) != speedPatients/speedFamilies ||
			len(viaHMIS.Data.Patients.Edges[0].Node.Appointments.Edges) != 3 ||
			!bytes.Equal(hmisJSON, sqlJSON) || !bytes.Equal(stackJSON, sqlJSON) {
			b.Fatalf("the sides differ:\nHMIS  %s\nSQL   %s\nstack %s", hmisJSON, sqlJSON, stackJSON)
		}
	}
	audited0 := speedAuditRows(b, s)
	var hmis, hand, stack speedSide
	round := 0
	for b.Loop() {
		sides := []func(){
			func() {
				hmis.run(s, speedBatch, func(i int) error {
					_, err := rig.post(rig.s.HTTP.URL+"/graphql", token, hmisBodies[(round*speedBatch+i)%len(hmisBodies)])
					return err
				})
			},
			func() {
				stack.run(s, speedBatch, func(i int) error {
					_, err := rig.post(rig.stack.URL, token, hmisBodies[(round*speedBatch+i)%len(hmisBodies)])
					return err
				})
			},
			func() {
				hand.run(s, speedBatch, func(i int) error {
					_, err := rig.post(rig.sql.URL+"/portal", token, handBodies[(round*speedBatch+i)%len(handBodies)])
					return err
				})
			},
		}
		for k := range sides {
			sides[(round+k)%len(sides)]()
		}
		round++
	}
	b.StopTimer()
	speedReport(b, &hmis, &hand)
	stackRate := float64(stack.requests) / stack.elapsed.Seconds()
	b.ReportMetric(stackRate, "stack-req/s")
	b.ReportMetric(stackRate/(float64(hand.requests)/hand.elapsed.Seconds()), "stack-ratio")
	b.ReportMetric(float64(stack.cpu.Microseconds())/float64(stack.requests), "stack-cpu-µs/req")
	b.ReportMetric(float64(stack.allocs)/float64(stack.requests), "stack-allocs/req")
	// Every read was audited: one row per HMIS request, none for the other side.
	if added := speedAuditRows(b, s) - audited0; added != hmis.requests {
		b.Fatalf("%d audit rows for %d audited reads", added, hmis.requests)
	}
}

const speedBookMutation = `mutation Book($in: BookAppointmentInput!) {
  bookAppointment(input: $in) { id status startAt endAt patient { id } provider { id } department { id } } }`

// BenchmarkSpeedBookAppointment: bookAppointment through HMIS against the
// same booking (speedSQL.book: same checks, same locks, same rows but the
// audit's) by hand. Bookings spread over speedProviders doctors and the
// 10,000 patients, every one at a time nobody holds, so they succeed and
// contend only as a hospital's would.
func BenchmarkSpeedBookAppointment(b *testing.B) {
	s := harness.NewServer(b)
	d := speedSeed(b, s)
	rig := newSpeedRig(b, s)
	token := s.Token("reception")
	// Far beyond the seeded appointments; each booking its own quarter hour.
	base := d.from.Add(400 * 24 * time.Hour)
	var slot atomic.Int64
	booking := func() speedBooking {
		i := int(slot.Add(1))
		start := base.Add(time.Duration(i) * 15 * time.Minute)
		return speedBooking{PatientID: d.patients[(i*7919)%len(d.patients)], ProviderID: d.providers[i%len(d.providers)],
			StartAt: start.Format(time.RFC3339), EndAt: start.Add(15 * time.Minute).Format(time.RFC3339), Reason: "check-up"}
	}
	hmisBook := func() ([]byte, speedBooking, error) {
		in := booking()
		body, _ := json.Marshal(map[string]any{"query": speedBookMutation, "variables": map[string]any{"in": in}})
		out, err := rig.post(rig.s.HTTP.URL+"/graphql", token, body)
		return out, in, err
	}
	handBook := func() ([]byte, speedBooking, error) {
		in := booking()
		body, _ := json.Marshal(in)
		out, err := rig.post(rig.sql.URL+"/book", token, body)
		return out, in, err
	}
	// Both sides book alike.
	for _, book := range []func() ([]byte, speedBooking, error){hmisBook, handBook} {
		raw, in, err := book()
		if err != nil {
			b.Fatal(err)
		}
		var got speedBooked
		if err := json.Unmarshal(raw, &got); err != nil {
			b.Fatal(err)
		}
		a := got.Data.BookAppointment
		if !globalid.Valid(a.ID, "apt") || a.Status != "BOOKED" || a.Patient.ID != in.PatientID || a.Provider.ID != in.ProviderID ||
			a.Department.ID != d.department || a.StartAt != in.StartAt {
			b.Fatalf("booked %s for %+v", raw, in)
		}
	}
	var hmis, hand speedSide
	round := 0
	for b.Loop() {
		sides := []func(){
			func() {
				hmis.run(s, speedBatch, func(int) error { _, _, err := hmisBook(); return err })
			},
			func() {
				hand.run(s, speedBatch, func(int) error { _, _, err := handBook(); return err })
			},
		}
		sides[round%2]()
		sides[1-round%2]()
		round++
	}
	b.StopTimer()
	speedReport(b, &hmis, &hand)
}

// speedAuditRows counts the rows of the audit trail.
func speedAuditRows(b *testing.B, s *harness.Server) int64 {
	b.Helper()
	var n int64
	if err := s.App.Store.DB.QueryRow(`SELECT count(*) FROM audit_events`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
