// Package configerr names the field a configuration error belongs to, the same way in every component: each line
// of a joined error gets the full path of its field ("registries[2].tls.ca_file: no such file"), so a user with
// several mistakes sees every one of them, each where it is.
package configerr

import (
	"errors"
	"fmt"
)

// Prefix puts "field." before each line of err (errors.Join's lines one by one, nested joins flattened). A nil err
// stays nil, so Prefix can wrap a Validate call directly.
func Prefix(field string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Prefix(field, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s.%w", field, err)
}

// Index is Prefix for the i-th element of a list field: "field[i].".
func Index(field string, i int, err error) error {
	return Prefix(fmt.Sprintf("%s[%d]", field, i), err)
}
