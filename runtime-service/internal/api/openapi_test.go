package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// spec is openapi.yaml, parsed loosely.
type spec map[string]any

func loadSpec(t testing.TB) spec {
	t.Helper()
	// Into a plain map: yaml.v3 would give nested mappings the named type too.
	var s map[string]any
	if err := yaml.Unmarshal(OpenAPI, &s); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return spec(s)
}

func m(v any) map[string]any {
	out, _ := v.(map[string]any)
	return out
}

func list(v any) []any {
	out, _ := v.([]any)
	return out
}

// resolve follows a $ref within the document.
func (s spec) resolve(node map[string]any) map[string]any {
	for node != nil {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		cur := any(map[string]any(s))
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = m(cur)[part]
		}
		node = m(cur)
	}
	return node
}

// TestOpenAPIMatchesRoutes: every route the handler serves is documented with its method, and every documented
// path is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := loadSpec(t)
	var documented, served []string
	for path, ops := range m(s["paths"]) {
		for method := range m(ops) {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range Routes {
		served = append(served, r.Method+" "+r.Path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.yaml documents\n  %v\nthe handler serves\n  %v", documented, served)
	}
}

// TestOpenAPIParametersMatchTheParser: each list endpoint documents exactly the query parameters ParseList takes,
// with the same sort orders and filter values.
func TestOpenAPIParametersMatchTheParser(t *testing.T) {
	s := loadSpec(t)
	for endpoint, want := range listParams {
		op := m(m(m(s["paths"])["/api/v1/"+endpoint])["get"])
		if op == nil {
			t.Fatalf("no GET /api/v1/%s in openapi.yaml", endpoint)
		}
		var names []string
		for _, p := range list(op["parameters"]) {
			p := s.resolve(m(p))
			if p["in"] != "query" {
				continue
			}
			name := p["name"].(string)
			names = append(names, name)
			schema := s.resolve(m(p["schema"]))
			var enum []any
			switch name {
			case "sort":
				enum = list(schema["enum"])
				if got := fmt.Sprint(enum); got != fmt.Sprint(want.sorts) {
					t.Errorf("%s: documented sorts %s; the parser takes %v", endpoint, got, want.sorts)
				}
				if schema["default"] != want.sorts[0] {
					t.Errorf("%s: documented default sort %v; the parser's is %s", endpoint, schema["default"], want.sorts[0])
				}
			case "severity", "verdict":
				enum = list(s.resolve(m(schema["items"]))["enum"])
				code := Severities
				switch {
				case name == "verdict":
					code = Verdicts
				case strings.HasPrefix(endpoint, "vulnerabilities"):
					code = VulnSeverities
				}
				if fmt.Sprint(enum) != fmt.Sprint(code) {
					t.Errorf("%s: documented %s values %v; the parser takes %v", endpoint, name, enum, code)
				}
			case "limit":
				if schema["maximum"] != MaxLimit || schema["default"] != DefaultLimit {
					t.Errorf("%s: documented limit %v (default %v); the parser: max %d, default %d", endpoint, schema["maximum"], schema["default"], MaxLimit, DefaultLimit)
				}
			case "offset":
				if schema["maximum"] != MaxOffset {
					t.Errorf("%s: documented offset maximum %v; the parser's is %d", endpoint, schema["maximum"], MaxOffset)
				}
			}
		}
		sort.Strings(names)
		wantNames := slices.Clone(want.params)
		sort.Strings(wantNames)
		if !slices.Equal(names, wantNames) {
			t.Errorf("%s: documented query parameters %v; the parser takes %v", endpoint, names, wantNames)
		}
	}
}

// validate checks a decoded JSON value against an OpenAPI schema: types, enums, nullability, required
// properties, and no property the schema does not document.
func (s spec) validate(schema map[string]any, v any, path string) error {
	schema = s.resolve(schema)
	if v == nil {
		if schema["nullable"] == true {
			return nil
		}
		return fmt.Errorf("%s: null, but the schema is not nullable", path)
	}
	if parts := list(schema["allOf"]); parts != nil {
		merged := map[string]any{"type": "object", "properties": map[string]any{}, "required": []any{}}
		isObject := false
		for _, p := range parts {
			p := s.resolve(m(p))
			if p["type"] == "object" || p["properties"] != nil || p["allOf"] != nil {
				isObject = true
				p = s.flatten(p)
				for k, v := range m(p["properties"]) {
					m(merged["properties"])[k] = v
				}
				merged["required"] = append(list(merged["required"]), list(p["required"])...)
				continue
			}
			if err := s.validate(p, v, path); err != nil {
				return err
			}
		}
		if !isObject {
			return nil
		}
		schema = merged
	}
	switch schema["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T; want an object", path, v)
		}
		props := m(schema["properties"])
		for _, r := range list(schema["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				return fmt.Errorf("%s: required property %q missing", path, r)
			}
		}
		for k, val := range obj {
			ps, ok := props[k]
			if !ok {
				return fmt.Errorf("%s: property %q is not in the schema", path, k)
			}
			if err := s.validate(m(ps), val, path+"."+k); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T; want an array", path, v)
		}
		for i, e := range arr {
			if err := s.validate(m(schema["items"]), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: %T; want a string", path, v)
		}
		if enum := list(schema["enum"]); enum != nil && !slices.Contains(enum, any(str)) {
			return fmt.Errorf("%s: %q is not one of %v", path, str, enum)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return fmt.Errorf("%s: %v; want an integer", path, v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s: %v; want a number", path, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T; want a boolean", path, v)
		}
	default:
		return fmt.Errorf("%s: schema without a type the validator knows: %v", path, schema)
	}
	return nil
}

// flatten turns an object schema built with allOf into one object schema.
func (s spec) flatten(schema map[string]any) map[string]any {
	schema = s.resolve(schema)
	parts := list(schema["allOf"])
	if parts == nil {
		return schema
	}
	out := map[string]any{"type": "object", "properties": map[string]any{}, "required": []any{}}
	for _, p := range parts {
		p := s.flatten(m(p))
		for k, v := range m(p["properties"]) {
			m(out["properties"])[k] = v
		}
		out["required"] = append(list(out["required"]), list(p["required"])...)
	}
	return out
}

// responseSchema is the documented schema of a response.
func (s spec) responseSchema(t testing.TB, route Route, status int) map[string]any {
	t.Helper()
	op := m(m(m(s["paths"])[route.Path])[strings.ToLower(route.Method)])
	resp := s.resolve(m(m(op["responses"])[fmt.Sprint(status)]))
	if resp == nil {
		t.Fatalf("%s %s: status %d is not documented", route.Method, route.Path, status)
	}
	return m(m(m(resp["content"])["application/json"])["schema"])
}

// checkResponse calls the handler and validates the response against the document.
func checkResponse(t *testing.T, s spec, h http.Handler, route Route, url string, wantStatus int) map[string]any {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if rec.Code != wantStatus {
		t.Fatalf("GET %s: %d %s; want %d", url, rec.Code, rec.Body, wantStatus)
	}
	var body any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: not JSON: %v", url, err)
	}
	if err := s.validate(s.responseSchema(t, route, wantStatus), body, "body"); err != nil {
		t.Fatalf("GET %s: the response does not match openapi.yaml: %v\n%s", url, err, rec.Body)
	}
	out, _ := body.(map[string]any)
	return out
}
