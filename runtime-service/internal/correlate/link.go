package correlate

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// maxLinkHeader bounds the Link header read; a registry's is one short URL.
const maxLinkHeader = 8 << 10

// NextLink reads the next page's URL from a Link header (RFC 8288), as the distribution spec paginates
// /v2/_catalog and /v2/<name>/tags/list: `</v2/_catalog?last=b&n=2>; rel="next"`. The target is resolved
// against the request's URL and must stay on its scheme and host: credentials go with every page, so a registry
// must not redirect them elsewhere through a header. Without a next link it returns nil, nil.
func NextLink(header string, request *url.URL) (*url.URL, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, nil
	}
	if len(header) > maxLinkHeader {
		return nil, fmt.Errorf("link header: %d bytes, more than %d", len(header), maxLinkHeader)
	}
	rest := header
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			break
		}
		if rest[0] != '<' {
			return nil, fmt.Errorf("link header %q: a link starts with '<'", clip(header))
		}
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return nil, fmt.Errorf("link header %q: no '>' closes the URL", clip(header))
		}
		target := rest[1:end]
		rest = rest[end+1:]
		// Parameters up to the next link: ; rel="next"; title="x". Quoted values may hold ',' and ';'.
		var rels []string
		for {
			rest = strings.TrimLeft(rest, " \t")
			if rest == "" || rest[0] == ',' {
				break
			}
			if rest[0] != ';' {
				return nil, fmt.Errorf("link header %q: want ';' or ',' after a link", clip(header))
			}
			rest = strings.TrimLeft(rest[1:], " \t")
			eq := strings.IndexAny(rest, "=;,")
			var key, val string
			if eq < 0 || rest[eq] != '=' {
				if eq < 0 {
					eq = len(rest)
				}
				key, rest = rest[:eq], rest[eq:]
			} else {
				key, rest = rest[:eq], strings.TrimLeft(rest[eq+1:], " \t")
				var err error
				if val, rest, err = linkParamValue(rest); err != nil {
					return nil, fmt.Errorf("link header %q: %w", clip(header), err)
				}
			}
			if strings.EqualFold(strings.TrimSpace(key), "rel") {
				rels = append(rels, strings.Fields(strings.ToLower(val))...)
			}
		}
		for _, rel := range rels {
			if rel == "next" {
				return resolveNext(target, request)
			}
		}
	}
	return nil, nil
}

// linkParamValue reads a parameter value: a quoted string (with \-escapes) or a token up to ';' or ','.
func linkParamValue(s string) (val, rest string, err error) {
	if s == "" || s[0] != '"' {
		end := strings.IndexAny(s, ";,")
		if end < 0 {
			end = len(s)
		}
		return strings.TrimSpace(s[:end]), s[end:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", errors.New("a quoted parameter value is not closed")
}

func resolveNext(target string, request *url.URL) (*url.URL, error) {
	ref, err := url.Parse(strings.TrimSpace(target))
	if err != nil {
		return nil, fmt.Errorf("link header: next URL %q: %w", clip(target), err)
	}
	next := request.ResolveReference(ref)
	if next.Scheme != request.Scheme || !strings.EqualFold(next.Host, request.Host) {
		return nil, fmt.Errorf("link header: next URL %q leaves %s://%s", clip(target), request.Scheme, request.Host)
	}
	if next.User != nil {
		return nil, fmt.Errorf("link header: next URL %q carries credentials", clip(next.Redacted()))
	}
	next.Fragment, next.RawFragment = "", ""
	return next, nil
}
