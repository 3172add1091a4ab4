package fhir

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// source is one place in the data model a FHIR type is read from: the
// GraphQL type its elements come from and the coordinates that reach it
// (its root query, or the patient's field that lists it). Observation has
// two: vital signs and lab results.
type source struct {
	typ  string
	root []string
}

// kind is one served resource type.
type kind struct {
	name    string
	sources []*source
	// params are the search parameters it takes besides the common ones.
	params map[string]string // name → FHIR search parameter type
	// load returns up to p.limit+1 resources the viewer may see, ordered
	// by ID, after p.after. One statement per source and edge loaded,
	// whatever the number of rows: $everything calls it once per type.
	load func(q *request, p *params) ([]item, error)
}

// item is a mapped resource, with the ID it is ordered and paged by.
type item struct {
	id  string
	res any
}

// params are a search's criteria, parsed and checked.
type params struct {
	ids        []string
	patient    string
	identifier []string // values, system checked
	codes      []string // codes, system checked
	category   string
	from, to   *time.Time // date ≥ from and < to
	after      string     // the last ID of the previous page
	limit      int
	raw        url.Values // what the client sent, for paging links
}

// common parameters every type takes.
var common = map[string]bool{"_id": true, "_count": true, "_cursor": true, "_format": true}

func (q *request) parse(k *kind, v url.Values, everything bool) (*params, *failure) {
	p := &params{limit: q.h.d.DefaultPageSize, raw: url.Values{}}
	bad := func(field, format string, args ...any) (*params, *failure) {
		return nil, fail(http.StatusBadRequest, "invalid", apperr.BadInput(field, format, args...))
	}
	for name, values := range v {
		base, modifier, hasModifier := strings.Cut(name, ":")
		if hasModifier {
			// A modifier dropped would invert the search (:not) or widen
			// it (:missing); none is served, so each is refused.
			return bad(name, "search modifiers (:%s) are not supported; see the CapabilityStatement", truncate(modifier, 20))
		}
		if !common[base] && k.params[base] == "" {
			// An ignored criterion would return more than the client
			// asked for; say so instead.
			return bad(name, "%s does not take the search parameter %q; see the CapabilityStatement", k.name, truncate(name, 40))
		}
		if base != "_cursor" {
			p.raw[name] = values
		}
		for _, val := range values {
			switch base {
			case "_format":
				if !strings.Contains(val, "json") {
					return bad(name, "only JSON is served")
				}
			case "_id":
				for _, id := range splitOr(val) {
					p.ids = append(p.ids, hmisID(id))
				}
			case "_count":
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 {
					// 0 would ask for a total alone, which is not given.
					return bad(name, "must be a whole number from 1")
				}
				p.limit = min(n, q.h.d.MaxPageSize)
			case "_cursor":
				b, err := base64.RawURLEncoding.DecodeString(val)
				if err != nil || !strings.HasPrefix(string(b), "v1:") || globalid.Prefix(string(b[3:])) == "" {
					return bad(name, "is not a cursor this server gave")
				}
				p.after = string(b[3:])
			case "patient", "subject", "beneficiary":
				id := hmisID(strings.TrimPrefix(val, "Patient/"))
				if p.patient != "" && p.patient != id {
					return bad(name, "names more than one patient")
				}
				p.patient = id
			case "identifier":
				for _, one := range splitOr(val) {
					system, value, hasSystem := strings.Cut(one, "|")
					if !hasSystem {
						value, system = one, ""
					}
					if system != "" && system != k.identifierSystem(q) {
						// Another system's number matches nothing here.
						value = "\x00"
					}
					p.identifier = append(p.identifier, value)
				}
			case "code":
				for _, one := range splitOr(val) {
					system, code, hasSystem := strings.Cut(one, "|")
					if !hasSystem {
						code, system = one, ""
					}
					if system != "" && system != k.codeSystem() {
						code = "\x00"
					}
					p.codes = append(p.codes, code)
				}
			case "category":
				p.category = strings.TrimPrefix(val, systemObsCat+"|")
			case "date":
				if err := p.date(val); err != nil {
					return bad(name, "%s", err.Error())
				}
			}
		}
	}
	if everything {
		p.limit = q.h.d.MaxEverything
	}
	return p, nil
}

func splitOr(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// date narrows to a prefixed date or dateTime: eq (the default), ge, gt,
// le, lt. A date without a time is the whole day (UTC).
func (p *params) date(v string) error {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	var start, end time.Time
	if t, err := time.Parse("2006-01-02", v); err == nil {
		start, end = t, t.AddDate(0, 0, 1)
	} else if t, err := time.Parse(time.RFC3339, v); err == nil {
		start, end = t.UTC(), t.UTC().Add(time.Second)
	} else {
		return apperr.BadInput("", "must be a date (2026-01-31) or a dateTime with a zone, optionally after ge, gt, le, lt or eq")
	}
	lower := func(t time.Time) {
		if p.from == nil || t.After(*p.from) {
			p.from = &t
		}
	}
	upper := func(t time.Time) {
		if p.to == nil || t.Before(*p.to) {
			p.to = &t
		}
	}
	switch prefix {
	case "eq":
		lower(start)
		upper(end)
	case "ge":
		lower(start)
	case "gt":
		lower(end)
	case "le":
		upper(end)
	case "lt":
		upper(start)
	default:
		return apperr.BadInput("", "the prefix %q is not supported", prefix)
	}
	return nil
}

func (k *kind) identifierSystem(q *request) string {
	switch k.name {
	case "Patient":
		return q.h.d.MRNSystem
	case "Practitioner":
		return systemLicence
	}
	return ""
}

func (k *kind) codeSystem() string {
	switch k.name {
	case "Condition":
		return systemICD10
	case "Observation", "DiagnosticReport":
		return systemLOINC
	}
	return ""
}

func (q *request) search(k *kind) ([]byte, *failure) {
	if f := q.allowedKind(k); f != nil {
		return nil, f
	}
	p, f := q.parse(k, q.query, false)
	if f != nil {
		return nil, f
	}
	items, err := q.loadKind(k, p)
	if err != nil {
		return nil, q.internal(err)
	}
	b := fm.Bundle{Type: fm.BundleTypeSearchset}
	self := q.base + "/" + k.name
	if len(p.raw) > 0 {
		self += "?" + p.raw.Encode()
	}
	b.Link = append(b.Link, fm.BundleLink{Relation: "self", Url: self})
	if len(items) > p.limit {
		items = items[:p.limit]
		next := url.Values{}
		for name, v := range p.raw {
			next[name] = v
		}
		next.Set("_cursor", base64.RawURLEncoding.EncodeToString([]byte("v1:"+items[len(items)-1].id)))
		b.Link = append(b.Link, fm.BundleLink{Relation: "next", Url: q.base + "/" + k.name + "?" + next.Encode()})
	}
	// No total: counting would cost a second statement per page, and a
	// count of what the viewer cannot see must never leak into it.
	if err := q.entries(&b, items); err != nil {
		return nil, q.internal(err)
	}
	return q.encode(b)
}

func (q *request) read(k *kind, id string) ([]byte, *failure) {
	if f := q.allowedKind(k); f != nil {
		return nil, f
	}
	id = hmisID(id)
	q.objectType, q.objectID = k.name, ""
	if globalid.Prefix(id) == "" {
		return nil, fail(http.StatusNotFound, "not-found", apperr.NotFoundf("%s not found", k.name))
	}
	q.objectID = id
	items, err := q.loadKind(k, &params{ids: []string{id}, limit: 1})
	if err != nil {
		return nil, q.internal(err)
	}
	if len(items) == 0 {
		// Another patient's resource is filtered out by row scope and
		// lands here too: the two must not be told apart.
		return nil, fail(http.StatusNotFound, "not-found", apperr.NotFoundf("%s not found", k.name))
	}
	b, err := marshal(items[0].res)
	if err != nil {
		return nil, q.internal(err)
	}
	return b, nil
}

// loadKind loads from every source of k the viewer may read, merged in ID
// order.
func (q *request) loadKind(k *kind, p *params) ([]item, error) {
	if p.after != "" {
		// A cursor is an ID; only one of the right shape reaches SQL.
		if globalid.Prefix(p.after) == "" {
			return nil, fail(http.StatusBadRequest, "invalid", apperr.BadInput("_cursor", "is not a cursor this server gave"))
		}
	}
	items, err := k.load(q, p)
	if err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].id < items[j].id })
	if len(items) > p.limit+1 {
		items = items[:p.limit+1]
	}
	return items, nil
}

func (q *request) entries(b *fm.Bundle, items []item) error {
	for _, it := range items {
		raw, err := marshal(it.res)
		if err != nil {
			return err
		}
		b.Entry = append(b.Entry, fm.BundleEntry{
			FullUrl:  str(q.base + "/" + resourceType(it.res) + "/" + fhirID(it.id)),
			Resource: raw,
			Search:   &fm.BundleEntrySearch{Mode: ptr(fm.SearchEntryModeMatch)},
		})
	}
	return nil
}

func (q *request) encode(v any) ([]byte, *failure) {
	b, err := marshal(v)
	if err != nil {
		return nil, q.internal(err)
	}
	return b, nil
}

// everything is Patient/{id}/$everything: the patient and every resource
// of theirs the viewer may read, each type loaded once.
func (q *request) everything(id string) ([]byte, *failure) {
	id = hmisID(id)
	q.objectType = "Patient"
	pk := kinds["Patient"]
	if f := q.allowedKind(pk); f != nil {
		return nil, f
	}
	if globalid.Prefix(id) == "" {
		return nil, fail(http.StatusNotFound, "not-found", apperr.NotFoundf("Patient not found"))
	}
	q.objectID = id
	for name := range q.query {
		if name != "_format" {
			return nil, fail(http.StatusBadRequest, "invalid", apperr.BadInput(name, "$everything takes no parameters here"))
		}
	}
	patient, err := q.loadKind(pk, &params{ids: []string{id}, limit: 1})
	if err != nil {
		return nil, q.internal(err)
	}
	if len(patient) == 0 {
		return nil, fail(http.StatusNotFound, "not-found", apperr.NotFoundf("Patient not found"))
	}
	all := patient
	for _, name := range everythingOrder {
		k := kinds[name]
		// A type the viewer may not read is left out of the record, as an
		// element they may not read is left out of a resource.
		if q.allowedKind(k) != nil {
			continue
		}
		items, err := q.loadKind(k, &params{patient: id, limit: q.h.d.MaxEverything})
		if err != nil {
			return nil, q.internal(err)
		}
		if len(items) > q.h.d.MaxEverything {
			return nil, fail(http.StatusUnprocessableEntity, "too-costly",
				apperr.BadInput("", "the record holds more than %d %s resources; search them by type with paging", q.h.d.MaxEverything, name))
		}
		all = append(all, items...)
	}
	b := fm.Bundle{Type: fm.BundleTypeSearchset, Link: []fm.BundleLink{{Relation: "self", Url: q.base + "/Patient/" + fhirID(id) + "/$everything"}}}
	if err := q.entries(&b, all); err != nil {
		return nil, q.internal(err)
	}
	return q.encode(b)
}
