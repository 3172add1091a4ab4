package audit

import (
	"context"
	"reflect"
	"sort"
	"sync"

	"github.com/hmis-dev/hmis/ent"
)

// Collector gathers, while a request runs, what the audit row for it must
// say: the patients whose data was read or written, the objects changed,
// the patient-data fields resolved, and the fields denied.
type Collector struct {
	mu       sync.Mutex
	patients map[string]struct{}
	objects  map[string]string // id → type
	fields   map[string]struct{}
	denied   map[string]struct{}
	// claimed names who a request without credentials says it is (the
	// username of a login), so failed sign-ins are traceable.
	claimedID, claimedName string
	reason                 string
	// sensitive: the request read something every read of is audited
	// (bank details), patient data or not.
	sensitive bool
}

// Snapshot is what a Collector gathered, sorted.
type Snapshot struct {
	PatientIDs  []string
	ObjectTypes []string
	ObjectIDs   []string
	Fields      []string
	Denied      []string
	ClaimedID   string
	ClaimedName string
	Reason      string
	Sensitive   bool
}

type collectorKey struct{}

// WithCollector returns ctx carrying a new, empty Collector.
func WithCollector(ctx context.Context) (context.Context, *Collector) {
	c := &Collector{}
	c.reset()
	return context.WithValue(ctx, collectorKey{}, c), c
}

func collectorFrom(ctx context.Context) *Collector {
	c, _ := ctx.Value(collectorKey{}).(*Collector)
	return c
}

func (c *Collector) reset() {
	c.patients = map[string]struct{}{}
	c.objects = map[string]string{}
	c.fields = map[string]struct{}{}
	c.denied = map[string]struct{}{}
	c.reason = ""
	c.sensitive = false
}

// Drain returns what was gathered and starts afresh, so that each event of
// a subscription is audited on its own.
func (c *Collector) Drain() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{
		PatientIDs:  keys(c.patients),
		Fields:      keys(c.fields),
		Denied:      keys(c.denied),
		ClaimedID:   c.claimedID,
		ClaimedName: c.claimedName,
		Reason:      c.reason,
		Sensitive:   c.sensitive,
	}
	types := map[string]struct{}{}
	for id, typ := range c.objects {
		s.ObjectIDs = append(s.ObjectIDs, id)
		types[typ] = struct{}{}
	}
	sort.Strings(s.ObjectIDs)
	s.ObjectTypes = keys(types)
	c.reset()
	return s
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NotePatients records that the request touched these patients' data.
func NotePatients(ctx context.Context, ids ...string) {
	if c := collectorFrom(ctx); c != nil {
		c.mu.Lock()
		for _, id := range ids {
			if id != "" {
				c.patients[id] = struct{}{}
			}
		}
		c.mu.Unlock()
	}
}

// NoteActor records who a request without credentials claims to be, such as
// the user signing in.
func NoteActor(ctx context.Context, id, name string) {
	if c := collectorFrom(ctx); c != nil {
		c.mu.Lock()
		c.claimedID, c.claimedName = id, name
		c.mu.Unlock()
	}
}

// NoteReason records why the actor did what the request does, in their
// words, for actions the trail must explain (an admin resetting someone's
// second factor).
func NoteReason(ctx context.Context, reason string) {
	if c := collectorFrom(ctx); c != nil {
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
	}
}

// NoteObject records that the request changed an object.
func NoteObject(ctx context.Context, typ, id string) {
	if c := collectorFrom(ctx); c != nil && id != "" {
		c.mu.Lock()
		c.objects[id] = typ
		c.mu.Unlock()
	}
}

// NoteField records that a field was resolved; only patient-data fields are kept.
func NoteField(ctx context.Context, object, field string) {
	if PatientData(object) {
		NoteCoordinate(ctx, object+"."+field)
	}
}

// PatientData reports whether the fields of an object type are patient
// data, which the audit row lists: those of patient-owned types. The rest
// (a department's name, a page's cursor) need no listing.
func PatientData(object string) bool {
	_, ok := ent.PatientColumn[object]
	return ok
}

// NoteCoordinate records that a patient-data field ("Patient.phone") was
// resolved: NoteField for a caller that has the coordinate at hand and has
// checked PatientData.
func NoteCoordinate(ctx context.Context, coordinate string) {
	if c := collectorFrom(ctx); c != nil {
		c.mu.Lock()
		c.fields[coordinate] = struct{}{}
		c.mu.Unlock()
	}
}

// NoteSensitive records that the request read a field (coordinate) of an
// object that is not patient data but whose every read is audited, such as
// a member of staff's bank details: the request gets an audit row naming
// the field and the object, as a read of patient data does.
func NoteSensitive(ctx context.Context, coordinate, typ, id string) {
	if c := collectorFrom(ctx); c != nil {
		c.mu.Lock()
		c.sensitive = true
		c.fields[coordinate] = struct{}{}
		if id != "" {
			c.objects[id] = typ
		}
		c.mu.Unlock()
	}
}

// NoteDenied records that the policy refused a field or operation.
func NoteDenied(ctx context.Context, coordinate string) {
	if c := collectorFrom(ctx); c != nil {
		c.mu.Lock()
		c.denied[coordinate] = struct{}{}
		c.mu.Unlock()
	}
}

// InstallTracking adds to client the interceptor and hook that tell the
// request's Collector which patients' rows were read and which objects were
// written, whatever path the request took to them.
func InstallTracking(client *ent.Client) {
	// A read that selects only some columns still reads the patient's, or
	// a page of notes asked for without their patient would name nobody.
	client.Intercept(ent.TraverseFunc(func(ctx context.Context, q ent.Query) error {
		if p, ok := q.(interface{ SelectPatientColumn(context.Context) }); ok {
			p.SelectPatientColumn(ctx)
		}
		return nil
	}))
	client.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			v, err := next.Query(ctx, q)
			if err == nil && collectorFrom(ctx) != nil {
				NotePatients(ctx, patientsIn(v)...)
			}
			return v, err
		})
	}))
	client.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			v, err := next.Mutate(ctx, m)
			if err == nil && collectorFrom(ctx) != nil {
				if withID, ok := m.(interface{ ID() (string, bool) }); ok {
					if id, ok := withID.ID(); ok {
						NoteObject(ctx, m.Type(), id)
					}
				}
				NotePatients(ctx, patientsIn(v)...)
			}
			return v, err
		})
	})
}

// patientsIn returns the patients an ent query or mutation result belongs
// to: one patient-owned entity or a slice of them.
func patientsIn(v ent.Value) []string {
	if one, ok := v.(ent.PatientOwned); ok {
		return []string{one.OwnerPatientID()}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || !rv.Type().Elem().Implements(patientOwned) {
		return nil
	}
	ids := make([]string, rv.Len())
	for i := range ids {
		ids[i] = rv.Index(i).Interface().(ent.PatientOwned).OwnerPatientID()
	}
	return ids
}

var patientOwned = reflect.TypeFor[ent.PatientOwned]()
