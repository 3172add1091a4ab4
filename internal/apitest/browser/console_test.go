package browser

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/demo"
)

// TestConsoleSignInQueryAndSubscribe: the console renders from the server
// alone, its sign-in form puts a token into the headers, a query runs as
// that user, and a subscription runs over graphql-transport-ws with the
// same token.
func TestConsoleSignInQueryAndSubscribe(t *testing.T) {
	t.Parallel()
	p := openBrowser(t)
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)

	p.run("open the console", chromedp.Navigate(s.HTTP.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-container")))
	p.run("sign in as the nurse",
		chromedp.SendKeys(chromedp.CSS("#username"), "nurse"),
		chromedp.SendKeys(chromedp.CSS("#password"), harness.DemoPassword),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	p.await("the token in the Headers tab", 10*time.Second,
		`document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').CodeMirror.getValue().includes('"Authorization": "Bearer ')`)

	// The query the console opens with: who am I.
	p.run("run the query", chromedp.Click(chromedp.CSS(".graphiql-execute-button")))
	p.await("the nurse's own user in the response", 10*time.Second, response(`"username": "nurse"`))

	// A subscription, from the same editor: a critical result for the
	// demo inpatient arrives in the response pane.
	p.run("write a subscription", chromedp.Evaluate[chromedp.Void](`document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(
	  'subscription { criticalLabResult { eventId type result { id } } }')`))
	p.run("run the subscription", chromedp.Click(chromedp.CSS(".graphiql-execute-button")))
	pf := harness.Facts(t, s, d.Patients[3])
	_, values := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	// The subscription starts when the server has it, which the page does
	// not show: release results until one arrives, as harness.AwaitLive does.
	for attempt := 0; ; attempt++ {
		harness.Must(t, attempt < 10, "no critical result reached the console's subscription")
		id := desk.Released(d.Patients[3], desk.Cat.Potassium.ID, harness.Potassium(values.CriticalHigh)).ID
		if p.holds(2*time.Second, response(strconv.Quote(id))) {
			break
		}
	}
	p.onlyFrom(s.HTTP.URL)
}

// response is a condition on the text of GraphiQL's response pane.
func response(fragment string) string {
	return fmt.Sprintf(`(function () {
	  var cm = document.querySelector('.result-window .CodeMirror');
	  return !!cm && cm.CodeMirror.getValue().includes(%s);
	})()`, strconv.Quote(fragment))
}

// A role that requires a second factor gets the code field after the
// password, and the code completes the sign-in.
func TestConsoleSecondFactor(t *testing.T) {
	t.Parallel()
	p := openBrowser(t)
	s := harness.NewServer(t)

	p.run("open the console", chromedp.Navigate(s.HTTP.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-container")))
	p.run("sign in as the doctor",
		chromedp.SendKeys(chromedp.CSS("#username"), "doctor"),
		chromedp.SendKeys(chromedp.CSS("#password"), harness.DemoPassword),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS("#mfa-code")))
	harness.Must(t, p.holds(time.Second, `document.getElementById('signed-in').hidden`),
		"the console signed the doctor in on the password alone")
	p.run("a wrong code", chromedp.SendKeys(chromedp.CSS("#mfa-code"), "000000"),
		chromedp.Click(chromedp.CSS("#mfa-button")))
	p.await("the refusal shown", 10*time.Second, `document.querySelector('#signin-status.error') !== null`)
	code, err := auth.TOTPCode(demo.TOTPSecret, time.Now())
	harness.Must(t, err == nil, "TOTP code: %v", err)
	p.run("the authenticator's code", chromedp.SendKeys(chromedp.CSS("#mfa-code"), code),
		chromedp.Click(chromedp.CSS("#mfa-button")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	p.await("the doctor signed in", 10*time.Second, `document.getElementById('who').textContent.startsWith('doctor')`)
	p.onlyFrom(s.HTTP.URL)
}
