package main

import (
	"context"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// cliTimeout bounds one operator command against the database: long enough for a slow first connection, short
// enough that a wrong -database-url does not hang a script.
const cliTimeout = time.Minute

// openStore opens the service's database for one command line operation. done closes the store and releases
// the deadline.
func openStore(dsn string) (ctx context.Context, st *store.Store, done func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	st, err = store.Open(ctx, dsn, store.Options{})
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, st, func() { st.Close(); cancel() }, nil
}
