package browser

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/console"
)

// TestWardDashboard: a nurse signs in to the example dashboard and picks
// the CCU. It shows the critical result raised before it opened, then each
// one verified through the API as it happens; across a server restart it
// renews its token, resumes with after and shows what was verified while
// it was away; an
// acknowledgement, its own or another dashboard's, clears the alert.
func TestWardDashboard(t *testing.T) {
	t.Parallel()
	p := openBrowser(t)
	b := harness.NewBacking(t)
	s := harness.NewServerOn(t, b)
	d := s.Demo()
	ccu := s.Layout().Wards["CCU"]
	inpatient := d.Patients[3] // in CCU-01
	desk := harness.NewLabDesk(t, s)
	pf := harness.Facts(t, s, inpatient)
	_, values := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	critical := func(desk *harness.LabDesk) string {
		return desk.Released(inpatient, desk.Cat.Potassium.ID, harness.Potassium(values.CriticalHigh)).ID
	}
	before := critical(desk)

	sb := newSwitchboard(t, s.HTTP.Listener.Addr().String())
	p.run("open the dashboard", chromedp.Navigate(sb.URL()+console.DashboardPath),
		chromedp.SendKeys(chromedp.CSS("#username"), "nurse"),
		chromedp.SendKeys(chromedp.CSS("#password"), harness.DemoPassword),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS("#board")))
	p.await("the ward list", 10*time.Second, fmt.Sprintf(`!!document.querySelector('#ward option[value=%q]')`, ccu))
	p.run("pick the CCU", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(function () { var s = document.getElementById('ward'); s.value = %q; s.dispatchEvent(new Event('change')); })()`, ccu)))
	p.await("the critical result raised before the dashboard opened", 10*time.Second, shown("criticals", before))
	p.await("the live connection", 10*time.Second, `document.getElementById('connection').dataset.state === 'live'`)

	// The subscriptions are live when a result released now shows in the
	// verified list, which only they fill.
	for attempt := 0; ; attempt++ {
		harness.Must(t, attempt < 10, "no verified result reached the dashboard")
		if p.holds(2*time.Second, shown("verified", desk.Released(inpatient, desk.Cat.Potassium.ID, harness.Potassium(values.Normal)).ID)) {
			break
		}
	}
	live := critical(desk)
	took := p.await("a critical result verified through the API", 10*time.Second,
		shown("criticals", live)+" && "+shown("verified", live))
	t.Logf("the critical result showed %s after its verification returned", took)

	// A restart: every connection is cut, and while the server is down a
	// critical result is verified (on the new process, not yet reachable).
	// The new process signs tokens with another secret, as `--demo` without
	// HMIS_TOKEN_SECRET does: the dashboard's access token is refused (4403)
	// and it renews it with its refresh token before it resumes.
	sb.switchTo("")
	s.Stop()
	p.await("the dashboard noticing the outage", 10*time.Second, `document.getElementById('connection').dataset.state !== 'live'`)
	s2 := harness.NewServerOn(t, b, func(c *config.Config) { c.TokenSecret = "another-secret-after-the-restart-0123456789" })
	desk2 := harness.NewLabDesk(t, s2)
	missed := critical(desk2)
	sb.switchTo(s2.HTTP.Listener.Addr().String())
	p.await("the result verified while the dashboard was away, replayed after the restart", 30*time.Second,
		shown("criticals", missed)+" && "+shown("verified", missed))
	p.await("the resumed connection", 10*time.Second, `document.getElementById('connection').textContent === 'live, resumed'`)
	for _, id := range []string{before, live} {
		p.await("the alerts from before the restart", time.Second, shown("criticals", id))
	}

	// The nurse acknowledges one; the doctor, elsewhere, another.
	p.run("acknowledge", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#criticals li[data-result=%q] button.acknowledge`, live))))
	p.await("the acknowledged alert cleared", 10*time.Second, "!"+shown("criticals", live))
	s2.As("doctor", harness.LabAcknowledgeMutation, map[string]any{"id": missed}).Decode(t, &struct{}{})
	p.await("the alert another clinician acknowledged cleared", 10*time.Second, "!"+shown("criticals", missed))
	p.await("the one not acknowledged still there", time.Second, shown("criticals", before))

	var out struct {
		UnacknowledgedCriticalResults struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s2.As("nurse", `query($w: ID) { unacknowledgedCriticalResults(wardId: $w) { edges { node { id } } } }`,
		map[string]any{"w": ccu}).Decode(t, &out)
	ids := harness.IDs(out.UnacknowledgedCriticalResults.Edges, func(e struct{ Node struct{ ID string } }) string { return e.Node.ID })
	harness.Must(t, slices.Equal(ids, []string{before}), "unacknowledged after the dashboard's acknowledgement: %v, want only %s", ids, before)
	acked := desk2.Read("nurse", live)
	harness.Must(t, acked.AcknowledgedBy != nil, "the result acknowledged on the dashboard is not acknowledged: %+v", acked)

	p.onlyFrom(sb.URL())
}

// shown is a condition: the result is a row of the list.
func shown(list, resultID string) string {
	return fmt.Sprintf(`!!document.querySelector('#%s li[data-result=' + %s + ']')`, list, strconv.Quote(strconv.Quote(resultID)))
}
