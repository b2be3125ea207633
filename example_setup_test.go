package flip_test

import (
	"database/sql"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/exampledb"
)

// What the examples start from, so that each example's body is what a
// program of yours would run.

// exampleDB is the example's own PostgreSQL database, migrated by flip
// (store.Migrate): the hub's *sql.DB.
func exampleDB() *sql.DB { return exampledb.New().DB }

// exampleIdentityProvider stands in for the hub's Cognito user pool
// (cognito.New(cognitoidentityprovider.NewFromConfig(cfg), userPoolID)):
// Ada and Rita have accounts, nobody else does yet.
func exampleIdentityProvider() flip.IdentityProvider {
	idp := fliptest.NewIdentityProvider()
	idp.AddUser("ada.admin@example.com")
	idp.AddUser("rita.research@example.com")
	return idp
}
