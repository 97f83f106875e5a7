package httpapi_test

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/concurrencydb/concurrencydb/httpapi"
)

// openapi.yaml documents the HTTP API exactly as implemented. These tests
// fail when a route is added or removed without documenting it, or when a
// documented operation loses a status, parameter or header the issue names.

type openAPIDoc struct {
	root map[string]any
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Fatalf("openapi.yaml: openapi version %q, want 3.0.x", v)
	}
	checkNoNulls(t, "", root)
	return openAPIDoc{root}
}

// checkNoNulls fails on a null value anywhere: in this document it is
// always a YAML slip, such as a comma inside an unquoted flow-mapping
// string ({description: a, b} has a key "b" with no value).
func checkNoNulls(t *testing.T, at string, v any) {
	t.Helper()
	switch v := v.(type) {
	case nil:
		t.Errorf("openapi.yaml: null at %s", at)
	case map[string]any:
		for k, x := range v {
			checkNoNulls(t, at+"/"+k, x)
		}
	case []any:
		for i, x := range v {
			checkNoNulls(t, fmt.Sprintf("%s[%d]", at, i), x)
		}
	}
}

// resolve follows a {"$ref": "#/a/b"} to its target.
func (d openAPIDoc) resolve(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("openapi.yaml: %v is not an object", v)
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var cur any = d.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		obj, _ := cur.(map[string]any)
		if cur = obj[part]; cur == nil {
			t.Fatalf("openapi.yaml: $ref %q does not resolve", ref)
		}
	}
	return d.resolve(t, cur)
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// operations returns every documented operation by "METHOD path".
func (d openAPIDoc) operations(t *testing.T) map[string]map[string]any {
	t.Helper()
	paths, ok := d.root["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.yaml has no paths")
	}
	ops := map[string]map[string]any{}
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			if slices.Contains(httpMethods, method) {
				ops[strings.ToUpper(method)+" "+path] = op.(map[string]any)
			}
		}
	}
	return ops
}

// params returns an operation's parameters, path-level ones included, as
// "in:name".
func (d openAPIDoc) params(t *testing.T, key string, op map[string]any) []string {
	t.Helper()
	path := key[strings.Index(key, " ")+1:]
	item := d.root["paths"].(map[string]any)[path].(map[string]any)
	var out []string
	for _, list := range []any{item["parameters"], op["parameters"]} {
		ps, _ := list.([]any)
		for _, p := range ps {
			pm := d.resolve(t, p)
			out = append(out, pm["in"].(string)+":"+pm["name"].(string))
			if pm["in"] == "path" && pm["required"] != true {
				t.Errorf("%s: path parameter %s is not required", key, pm["name"])
			}
		}
	}
	sort.Strings(out)
	return out
}

func routeKeys() []string {
	var keys []string
	for _, rt := range httpapi.Routes() {
		keys = append(keys, rt.Method+" "+rt.Pattern)
	}
	sort.Strings(keys)
	return keys
}

func TestOpenAPIDocumentsExactlyTheRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for k := range doc.operations(t) {
		documented = append(documented, k)
	}
	sort.Strings(documented)
	want := routeKeys()
	for _, k := range want {
		if !slices.Contains(documented, k) {
			t.Errorf("route %s is not in openapi.yaml", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(want, k) {
			t.Errorf("openapi.yaml documents %s, which httpapi.Routes() does not serve", k)
		}
	}
}

// apiSpec is what the issue names per route: status codes and parameters
// ("in:name"). Every /db/ route also answers 400 (id), 401 and 403 (auth).
type routeSpec struct {
	statuses []string
	params   []string
	headers  map[string][]string // response headers by status
}

var apiSpec = map[string]routeSpec{
	"GET /healthz":                   {statuses: []string{"200"}},
	"GET /metrics":                   {statuses: []string{"200", "401", "403"}},
	"POST /db/{acc}/sequence/{id}":   {statuses: []string{"200", "400", "409"}, params: []string{"query:count"}},
	"GET /db/{acc}/sequence/{id}":    {statuses: []string{"200", "404", "409"}},
	"DELETE /db/{acc}/sequence/{id}": {statuses: []string{"204"}},
	"POST /db/{acc}/counter/{id}":    {statuses: []string{"200", "400", "409"}, params: []string{"query:add"}},
	"GET /db/{acc}/counter/{id}":     {statuses: []string{"200", "404", "409"}},
	"DELETE /db/{acc}/counter/{id}":  {statuses: []string{"204"}},
	"POST /db/{acc}/kv/{id}":         kvWriteSpec,
	"PUT /db/{acc}/kv/{id}":          kvWriteSpec,
	"GET /db/{acc}/kv/{id}":          {statuses: []string{"200", "404"}, headers: map[string][]string{"200": {"ETag", "X-Version", "X-TTL-Ms"}}},
	"DELETE /db/{acc}/kv/{id}":       {statuses: []string{"204", "404", "409"}, params: []string{"header:If-Match", "header:If-None-Match", "query:ver"}},
	"POST /db/{acc}/lock/{id}":       {statuses: []string{"200", "400", "409"}, params: []string{"query:dur", "query:id", "query:owner"}},
	"GET /db/{acc}/lock/{id}":        {statuses: []string{"200", "404"}},
	"DELETE /db/{acc}/lock/{id}":     {statuses: []string{"204", "409"}, params: []string{"query:id", "query:owner"}},
	"POST /db/{acc}/mlock/{id}":      {statuses: []string{"200", "400", "409"}, params: []string{"query:dur", "query:handle", "query:wait"}},
	"POST /db/{acc}/munlock/{id}":    {statuses: []string{"204", "409"}, params: []string{"query:handle"}},
}

var kvWriteSpec = routeSpec{
	statuses: []string{"200", "400", "409", "413"},
	params:   []string{"header:If-Match", "header:If-None-Match", "query:ttl", "query:ver"},
	headers:  map[string][]string{"200": {"ETag", "X-Version"}},
}

// The query parameters openapi.yaml documents for a route are exactly those
// its row in the route table takes (any other is refused 400), and it
// documents If-Match / If-None-Match exactly where the route takes them
// (elsewhere a write with one is refused 400).
func TestOpenAPIQueryParametersAreThoseTheRoutesTake(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := doc.operations(t)
	for _, rt := range httpapi.Routes() {
		key := rt.Method + " " + rt.Pattern
		op := ops[key]
		if op == nil {
			t.Errorf("%s is not documented", key)
			continue
		}
		var documented []string
		conds := false
		for _, p := range doc.params(t, key, op) {
			if name, ok := strings.CutPrefix(p, "query:"); ok {
				documented = append(documented, name)
			}
			conds = conds || p == "header:If-Match" || p == "header:If-None-Match"
		}
		if conds != rt.Conds {
			t.Errorf("%s: openapi.yaml documents If-Match/If-None-Match: %v; the route takes them: %v", key, conds, rt.Conds)
		}
		if body := op["requestBody"] != nil; body != rt.Body {
			t.Errorf("%s: openapi.yaml documents a request body: %v; the route reads one (else it is 400): %v", key, body, rt.Body)
		}
		takes := slices.Sorted(slices.Values(rt.Query))
		if !slices.Equal(documented, takes) {
			t.Errorf("%s: openapi.yaml documents query parameters %v, the route takes %v", key, documented, takes)
		}
	}
}

func TestOpenAPIOperationsListTheIssuesStatusesParametersAndHeaders(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := doc.operations(t)
	for _, key := range routeKeys() {
		t.Run(key, func(t *testing.T) {
			spec, ok := apiSpec[key]
			if !ok {
				t.Fatalf("route %s has no entry in apiSpec: add the statuses the issue names for it", key)
			}
			op := ops[key]
			if op == nil {
				t.Fatalf("%s is not documented", key)
			}
			responses, _ := op["responses"].(map[string]any)
			statuses, params := spec.statuses, spec.params
			if strings.HasPrefix(key[strings.Index(key, " ")+1:], "/db/") {
				statuses = append(slices.Clone(statuses), "400", "401", "403")
				params = append(slices.Clone(params), "path:acc", "path:id")
			}
			for _, st := range statuses {
				if responses[st] == nil {
					t.Errorf("status %s is not documented", st)
				}
			}
			for st, r := range responses {
				if desc, _ := doc.resolve(t, r)["description"].(string); desc == "" {
					t.Errorf("response %s has no description", st)
				}
			}
			sort.Strings(params)
			if got := doc.params(t, key, op); !slices.Equal(got, params) {
				t.Errorf("parameters %v, want %v", got, params)
			}
			for st, names := range spec.headers {
				hs, _ := doc.resolve(t, responses[st])["headers"].(map[string]any)
				for _, h := range names {
					if hs[h] == nil {
						t.Errorf("response %s does not document header %s", st, h)
					} else {
						doc.resolve(t, hs[h])
					}
				}
			}
		})
	}
}
