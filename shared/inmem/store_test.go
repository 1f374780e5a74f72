package inmem_test

import (
	"testing"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/followup/storetest"
	"github.com/followups/followups/shared/inmem"
)

// The fake passes the same contract as the real stores, so unit tests built
// on it test the behaviour the real ones have.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) followup.Store { return inmem.NewStore() })
}
