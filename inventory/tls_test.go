package inventory_test

import (
	"errors"
	"testing"

	"github.com/pigwf/pigwf/internal/libpq"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
)

// Every TLS setting pigwf writes into postgresql.conf (libpq.ServerSettings) is pigwf's: the
// inventory refuses it in pg_parameters, whichever one a future change adds.
func TestTLSSettingsAreDerived(t *testing.T) {
	for k := range libpq.ServerSettings(pki.NodeFiles()) {
		_, err := inventory.ParseInventory("tls.yml", []byte(inv("", "        pg_parameters: { "+k+": x }\n", "", "")))
		var verr *inventory.ValidationError
		if !errors.As(err, &verr) {
			t.Errorf("pg_parameters.%s: %v, want a ValidationError", k, err)
			continue
		}
		found := false
		for _, p := range verr.Problems {
			found = found || p.Field == "pg_parameters."+k
		}
		if !found {
			t.Errorf("pg_parameters.%s is not refused: %v", k, err)
		}
	}
}
