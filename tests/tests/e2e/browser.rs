//! The web UI driven in a real browser: Debian's Chromium through its matching chromedriver
//! (W3C WebDriver via fantoccini). A streamer adds a stream, ingests a generated recording,
//! watches progress reach "awaiting review" without a reload, plays and seeks from the
//! transcript, corrects a line and finds it by search, opens the hit at its moment, reviews the
//! proposals; a second user in another browser sees none of it. Every wait is for a condition
//! in the page (polled), never a fixed sleep.
//!
//! `GT_SCREENSHOT_DIR=dir` saves the screenshots the README shows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gt_cli::media_gen::{Generated, RecordingSpec, Segment, generate};
use gt_tests::{ALICE, AppOptions, BOB, TestApp};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

const CASTLE: &[&str] = &[
    "Welcome back to the stream everyone.",
    "Today we are storming the castle in the north.",
    "The castle boss has three phases and a fire attack.",
];
const BAKING: &[&str] = &[
    "Now let us switch to baking some bread.",
    "Mix the flour with warm water and a little yeast.",
    "The bread needs to bake for forty minutes in a hot oven.",
];

/// One file: the castle talk, a 30 s break, the baking talk (two proposals with a 20 s break
/// rule).
fn recording(path: &Path) -> Generated {
    let mut segs = vec![Segment::Silence(1.0)];
    for (i, t) in CASTLE.iter().chain(BAKING).enumerate() {
        if i == CASTLE.len() {
            segs.push(Segment::Silence(30.0));
        } else if i > 0 {
            segs.push(Segment::Silence(1.2));
        }
        segs.push(Segment::Speech((*t).into()));
    }
    segs.push(Segment::Silence(2.0));
    generate(&RecordingSpec::mic(segs, Some((320, 180, 30))), path).unwrap()
}

/// Start (file seconds) of the generated sentence containing `needle`, where its sound begins.
fn said_at(g: &Generated, needle: &str) -> f64 {
    g.tracks[0]
        .iter()
        .zip(&g.leads[0])
        .find_map(|((seg, a, _), lead)| match seg {
            Segment::Speech(t) if t.contains(needle) => Some(a + lead),
            _ => None,
        })
        .unwrap()
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profiles: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "Debian's chromium and chromium-driver are needed (./gt test installs them)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver {
            child,
            port,
            _profiles: tempfile::tempdir().unwrap(),
        }
    }

    /// A new browser with its own profile (nothing shared with another session).
    async fn browser(&self, name: &str) -> Client {
        let profile = self._profiles.path().join(name);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                    "--window-size=1366,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        // Both rustls providers are linked into this binary; pick one (any test may be first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` (a function body returning a value) until it returns something other than
/// `null`/`false`; returns it. Fails with `what` and the page's flash message on timeout.
async fn wait_js(c: &Client, script: &str, within: Duration, what: &str) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = c.execute(script, vec![]).await.unwrap();
        if !(v.is_null() || v == Value::Bool(false)) {
            return v;
        }
        if Instant::now() > deadline {
            let flash = c
                .execute(
                    "return [document.getElementById('flash')?.textContent, \
                     document.getElementById('main')?.innerText.slice(0, 3000), \
                     document.getElementById('tasks')?.innerText]",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what} (last value {v}; page says {flash})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn css(c: &Client, selector: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
}

async fn type_into(c: &Client, selector: &str, text: &str) {
    let e = css(c, selector).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("GT_SCREENSHOT_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), c.screenshot().await.unwrap()).unwrap();
    }
}

/// The player's time.
async fn player_time(c: &Client) -> f64 {
    c.execute(
        "return document.getElementById('player').currentTime",
        vec![],
    )
    .await
    .unwrap()
    .as_f64()
    .unwrap()
}

#[tokio::test]
async fn the_ui_calls_only_documented_routes() {
    // The UI's route list (api/web/src/api.ts) against the live OpenAPI document.
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    let (s, doc) = app.get(ALICE, "/openapi.json").await;
    assert_eq!(s, 200);
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/web/src/api.ts"),
    )
    .unwrap();
    let list = source
        .split("export const ENDPOINTS")
        .nth(1)
        .and_then(|s| s.split("];").next())
        .expect("ENDPOINTS in api.ts");
    let mut n = 0;
    for line in list.lines().map(str::trim).filter(|l| l.starts_with("[\"")) {
        let parts: Vec<&str> = line.split('"').collect();
        let (method, path) = (parts[1], parts[3]);
        assert!(
            doc["paths"][path][method].is_object(),
            "the UI calls {method} {path}, which /openapi.json does not describe"
        );
        n += 1;
    }
    assert!(n >= 20, "only {n} endpoints parsed");
    // The page and its script are served; pages are real paths; no token in any of them.
    for path in ["/", "/streams/x", "/ui/search", "/app.css"] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let js = app
        .http
        .get(format!("{}/app.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.status(),
        200,
        "the web UI bundle is built (./gt build-web)"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_streamer_does_the_whole_job_in_the_browser() {
    let app = TestApp::start().await.unwrap();
    let g = recording(&app.recordings_of(ALICE).join("sunday/part1.mkv"));
    let driver = Driver::start().await;
    let c = driver.browser("alice").await;
    let base = app.base.clone();

    // Sign in through the fragment; the token leaves the address bar at once.
    c.goto(&format!("{base}/#token={}", app.token(ALICE)))
        .await
        .unwrap();
    css(&c, "#new-stream").await;
    let url = c.current_url().await.unwrap();
    assert!(url.fragment().is_none() && url.query().is_none(), "{url}");
    wait_js(
        &c,
        "return document.querySelector('#live .dot.on') !== null",
        Duration::from_secs(20),
        "the WebSocket",
    )
    .await;

    // Add the stream from its recordings folder.
    type_into(&c, "#new-stream input[name=title]", "Sunday stream").await;
    type_into(&c, "#new-stream input[name=prefix]", "sunday").await;
    css(&c, "#new-stream button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let stream_id = wait_js(
        &c,
        "return document.querySelector('#streams tr[data-stream]')?.dataset.stream ?? null",
        Duration::from_secs(20),
        "the new stream's row",
    )
    .await;
    let stream_id = stream_id.as_str().unwrap().to_string();
    css(&c, &format!("tr[data-stream='{stream_id}'] a"))
        .await
        .click()
        .await
        .unwrap();
    css(&c, "#ingest-form").await;
    // The page is never reloaded from here to the review: a marker on `window` survives.
    c.execute("window.__sameDocument = true", vec![])
        .await
        .unwrap();

    // Bad input: the API's message next to the field, everything typed kept, nothing started.
    type_into(&c, "#ingest-form input[name=language]", "en").await;
    c.execute(
        "document.querySelector('#ingest-form details').open = true",
        vec![],
    )
    .await
    .unwrap();
    type_into(&c, "#ingest-form input[name=break_gap]", "-20").await;
    type_into(&c, "#ingest-form input[name=min_length]", "5").await;
    type_into(&c, "#ingest-form input[name=max_length]", "600").await;
    css(&c, "#ingest").await.click().await.unwrap();
    let err = wait_js(
        &c,
        "const e = document.querySelector('#ingest-form .field-error'); \
         return e ? [e.textContent, e.closest('label')?.querySelector('input')?.name ?? null] : null",
        Duration::from_secs(20),
        "the field error",
    )
    .await;
    // The very message the API gives for that body, next to the field it names.
    let (s, api_says) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": stream_id, "initialPrompt": "", "initialSummary": "", "language": "en",
                   "episodes": {"break_gap": -20.0, "min_length": 5.0, "max_length": 600.0}}),
        )
        .await;
    assert_eq!(s, 400, "{api_says}");
    assert!(api_says["message"].as_str().unwrap().contains("break_gap"));
    assert_eq!(err, json!([api_says["message"], "break_gap"]));
    let kept = c
        .execute(
            "return ['language','break_gap','min_length','max_length'].map(n => \
             document.querySelector(`#ingest-form input[name=${n}]`).value)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!(["en", "-20", "5", "600"]));
    let (s, body) = app
        .get(ALICE, &format!("/stream/{stream_id}/progress"))
        .await;
    assert_eq!(s, 404, "nothing was started: {body}");

    // Corrected, the ingestion starts; progress moves to "awaiting review" on its own.
    type_into(&c, "#ingest-form input[name=break_gap]", "20").await;
    css(&c, "#ingest").await.click().await.unwrap();
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let state = c
            .execute(
                "return document.getElementById('stream-state')?.dataset.state ?? ''",
                vec![],
            )
            .await
            .unwrap();
        let state = state.as_str().unwrap().to_string();
        let stage: String = state
            .chars()
            .filter(|c| !c.is_ascii_digit() && *c != '%')
            .collect();
        if seen.last().map(String::as_str) != Some(stage.trim()) {
            seen.push(stage.trim().to_string());
        }
        if state == "awaiting review" {
            break;
        }
        assert!(
            !state.contains("failed") && started.elapsed() < Duration::from_secs(420),
            "ingestion: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ingest_s = started.elapsed().as_secs_f64();
    eprintln!("browser: awaiting review after {ingest_s:.1} s; stages shown: {seen:?}");
    assert!(seen.len() >= 3, "the stage moved on screen: {seen:?}");
    // The task list shows the waiting review as its own state.
    wait_js(
        &c,
        "return document.querySelector('#tasks .badge[data-state=\"awaiting review\"]') !== null",
        Duration::from_secs(20),
        "the task list's awaiting-review badge",
    )
    .await;
    assert_eq!(
        c.execute("return window.__sameDocument === true", vec![])
            .await
            .unwrap(),
        json!(true),
        "the page was reloaded"
    );

    // The preview plays; a transcript line seeks the player to where that sentence is said.
    wait_js(
        &c,
        "const v = document.getElementById('player'); return v && v.readyState >= 1",
        Duration::from_secs(60),
        "the HLS preview's metadata",
    )
    .await;
    // The preview was built after the proposals (its task write refreshed the page, which is
    // how the player appeared). From here the review may wait for days: the page asks for
    // progress again only when the WebSocket reports a task change or a page opens the stream
    // (the search hit, once).
    let progress_requests = "return performance.getEntriesByType('resource').filter(e => e.name.includes('/progress')).length";
    let requests_at_review = c.execute(progress_requests, vec![]).await.unwrap();
    let bread_line = "Array.from(document.querySelectorAll('#transcript .line')).find(l => /forty|40/.test(l.textContent))";
    let line_start = wait_js(
        &c,
        &format!("const l = {bread_line}; return l ? Number(l.dataset.start) : null"),
        Duration::from_secs(20),
        "the bread line",
    )
    .await
    .as_f64()
    .unwrap();
    let truth = said_at(&g, "forty minutes");
    assert!(
        (line_start - truth).abs() < 1.0,
        "line at {line_start}, said at {truth}"
    );
    c.execute(
        &format!("{bread_line}.querySelector('button.seek').click()"),
        vec![],
    )
    .await
    .unwrap();
    wait_js(
        &c,
        &format!(
            "const v = document.getElementById('player'); const l = {bread_line}; \
             return !v.paused && v.currentTime > {line_start} + 0.5 && l.classList.contains('current')"
        ),
        Duration::from_secs(30),
        "playback from the clicked line",
    )
    .await;
    let t = player_time(&c).await;
    assert!(
        t >= line_start && t < line_start + 10.0,
        "{t} vs {line_start}"
    );
    c.execute("document.getElementById('player').pause()", vec![])
        .await
        .unwrap();
    screenshot(&c, "stream.png").await;

    // Correct a line in place; the new word is found by search.
    let yeast_line = "Array.from(document.querySelectorAll('#transcript .line')).find(l => /yeast/i.test(l.textContent))";
    c.execute(
        &format!("{yeast_line}.querySelector('button.edit').click()"),
        vec![],
    )
    .await
    .unwrap();
    type_into(
        &c,
        "#transcript .line-input",
        "Mix the flour with warm water and a pinch of saffron.",
    )
    .await;
    css(&c, "#transcript .line-edit button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "return Array.from(document.querySelectorAll('#transcript .line.saved')).some(l => l.textContent.includes('saffron'))",
        Duration::from_secs(20),
        "the saved line",
    )
    .await;
    css(&c, "nav a[href='/ui/search']")
        .await
        .click()
        .await
        .unwrap();
    type_into(&c, "#search-form input[name=q]", "saffron").await;
    // Re-embedding runs after the save: search again until the corrected window is indexed.
    let deadline = Instant::now() + Duration::from_secs(90);
    let hit_at = loop {
        css(&c, "#search-form button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        let hit = wait_js(
            &c,
            "const r = document.getElementById('results'); if (!r.children.length) return null; \
             const h = r.querySelector('.hit'); \
             return h ? [h.textContent.includes('saffron'), h.querySelector('mark')?.textContent ?? '', Number(h.querySelector('a').dataset.at)] : 'none'",
            Duration::from_secs(20),
            "search results",
        )
        .await;
        if hit[0] == json!(true) {
            assert_eq!(hit[1].as_str().unwrap().to_lowercase(), "saffron");
            break hit[2].as_f64().unwrap();
        }
        assert!(Instant::now() < deadline, "saffron never found: {hit}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    screenshot(&c, "search.png").await;
    let said = said_at(&g, "yeast");
    assert!(
        (hit_at - said).abs() < 1.0,
        "hit at {hit_at}, said at {said}"
    );

    // The hit opens the stream's player at that moment.
    css(&c, "#results .hit a").await.click().await.unwrap();
    wait_js(
        &c,
        "const v = document.getElementById('player'); return v && v.readyState >= 1",
        Duration::from_secs(60),
        "the player after opening the hit",
    )
    .await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/streams/{stream_id}"));
    let t = wait_js(
        &c,
        "const v = document.getElementById('player'); return v.currentTime > 0 ? v.currentTime : null",
        Duration::from_secs(20),
        "the seek to the hit",
    )
    .await
    .as_f64()
    .unwrap();
    assert!((t - said).abs() < 1.0, "player at {t}, said at {said}");

    // Review: retitle and approve the first proposal, reject the second.
    css(&c, "#review-form fieldset.proposal").await;
    let ids = c
        .execute(
            "return Array.from(document.querySelectorAll('#review-form fieldset.proposal')).map(f => f.dataset.episode)",
            vec![],
        )
        .await
        .unwrap();
    let ids: Vec<String> = serde_json::from_value(ids).unwrap();
    assert_eq!(ids.len(), 2, "two proposals: {ids:?}");
    let (first, second) = (&ids[0], &ids[1]);
    type_into(
        &c,
        &format!("fieldset[data-episode='{first}'] input[name='title-{first}']"),
        "Storming the castle",
    )
    .await;
    // Move its end one second earlier: the field shows whole seconds as m:ss.
    let shown = c
        .execute(
            &format!("return document.querySelector(\"input[name='end-{first}']\").value"),
            vec![],
        )
        .await
        .unwrap();
    let (m, ss) = shown.as_str().unwrap().split_once(':').unwrap();
    let new_end = m.parse::<u64>().unwrap() * 60 + ss.parse::<u64>().unwrap() - 1;
    type_into(
        &c,
        &format!("input[name='end-{first}']"),
        &format!("{}:{:02}", new_end / 60, new_end % 60),
    )
    .await;
    css(
        &c,
        &format!("input[name='decision-{first}'][value=approve]"),
    )
    .await
    .click()
    .await
    .unwrap();
    css(
        &c,
        &format!("input[name='decision-{second}'][value=reject]"),
    )
    .await
    .click()
    .await
    .unwrap();
    screenshot(&c, "review.png").await;
    let requests_before_review = c.execute(progress_requests, vec![]).await.unwrap();
    eprintln!(
        "browser: progress requests while awaiting review: {requests_at_review} -> {requests_before_review}"
    );
    assert_eq!(
        requests_before_review.as_u64().unwrap(),
        requests_at_review.as_u64().unwrap() + 1,
        "only the stream page's reopening asked for progress"
    );
    css(&c, "#submit-review").await.click().await.unwrap();
    let decided = wait_js(
        &c,
        &format!(
            "const a = document.querySelector(\"#review li[data-episode='{first}'][data-review=approved] .episode-title\"); \
             const r = document.querySelector(\"#review li[data-episode='{second}'][data-review=rejected]\"); \
             const s = document.getElementById('stream-state')?.dataset.state; \
             return a && r && s === 'completed' ? a.textContent : null"
        ),
        Duration::from_secs(120),
        "both decisions shown and the ingestion completed",
    )
    .await;
    assert_eq!(decided, json!("Storming the castle"));
    screenshot(&c, "decided.png").await;
    // The other pages: episodes with their decisions, a series added, the profile saved.
    css(&c, "nav a[href='/ui/episodes']")
        .await
        .click()
        .await
        .unwrap();
    let listed = wait_js(
        &c,
        "const l = Array.from(document.querySelectorAll('main li[data-episode]'));          return l.length ? l.map(e => e.dataset.review).sort() : null",
        Duration::from_secs(20),
        "the episodes page",
    )
    .await;
    assert_eq!(listed, json!(["approved", "rejected"]));
    css(&c, "nav a[href='/ui/series']")
        .await
        .click()
        .await
        .unwrap();
    type_into(&c, "#new-series input[name=title]", "Castle and kitchen").await;
    type_into(
        &c,
        "#new-series input[name=episode_title_template]",
        "${title} - Episode ${episode_order_index}",
    )
    .await;
    css(&c, "#new-series button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "return Array.from(document.querySelectorAll('main .records li')).some(l => l.textContent.includes('Castle and kitchen'))",
        Duration::from_secs(20),
        "the new series",
    )
    .await;
    let (_, series) = app
        .get(ALICE, "/records/series?perPage=10&cursor=null")
        .await;
    assert_eq!(series["items"][0]["title"], "Castle and kitchen");
    css(&c, "nav a[href='/ui/profile']")
        .await
        .click()
        .await
        .unwrap();
    type_into(&c, "#profile-form input[name=speechTrack]", "1").await;
    css(&c, "#profile-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "return document.getElementById('flash').textContent === 'Profile saved.'",
        Duration::from_secs(20),
        "the saved profile",
    )
    .await;
    let (_, profile) = app.get(ALICE, "/records/profiles/my-profile").await;
    assert_eq!(profile["speechTrack"], 1, "{profile}");
    css(&c, "nav a[href='/']").await.click().await.unwrap();
    wait_js(
        &c,
        &format!("return document.querySelector(\"tr[data-stream='{stream_id}'] .badge[data-state=completed]\") !== null"),
        Duration::from_secs(20),
        "the completed stream in the list",
    )
    .await;
    // The approved episode's render reports itself on the WebSocket: the task list shows it
    // finished, under the episode's title, without a reload.
    wait_js(
        &c,
        "return Array.from(document.querySelectorAll('#tasks li')).some(l => \
           l.textContent.includes('rendering') && l.textContent.includes('Storming the castle') \
           && l.querySelector('.badge.done'))",
        Duration::from_secs(180),
        "the finished render in the task list",
    )
    .await;
    screenshot(&c, "streams.png").await;
    c.goto(&format!("{base}/streams/{stream_id}"))
        .await
        .unwrap();
    css(&c, "#review li[data-review=approved]").await;

    // Readable on a phone: nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    let overflow = wait_js(
        &c,
        "if (window.innerWidth > 400) return null; \
         const w = document.documentElement.clientWidth; \
         const wide = Array.from(document.querySelectorAll('body *')) \
           .filter(e => e.getBoundingClientRect().right > w + 1) \
           .slice(0, 5).map(e => `${e.tagName}.${e.className}#${e.id}`); \
         return [document.documentElement.scrollWidth - w, wide]",
        Duration::from_secs(10),
        "the phone-sized window",
    )
    .await;
    assert_eq!(
        overflow[0],
        json!(0),
        "horizontal scrolling on a phone: {overflow}"
    );
    c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    screenshot(&c, "phone.png").await;
    // The API agrees with the page.
    let (_, eps) = app
        .get(ALICE, &format!("/stream/{stream_id}/episodes"))
        .await;
    let by_id = |id: &str| {
        eps["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id(first)["review_status"], "approved");
    assert_eq!(by_id(first)["title"], "Storming the castle");
    assert_eq!(
        by_id(first)["end_time"].as_f64(),
        Some(new_end as f64),
        "the range edit"
    );
    let last_frame = by_id(first)["cut_list"]["inputMedia"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["sections"][0]["endFrame"]
        .clone();
    assert!(
        last_frame.as_f64().is_some(),
        "a cut list for the new range"
    );
    assert_eq!(by_id(second)["review_status"], "rejected");

    // Another user in another browser sees none of it.
    let b = driver.browser("bob").await;
    b.goto(&format!("{base}/#token={}", app.token(BOB)))
        .await
        .unwrap();
    css(&b, "#new-stream").await;
    wait_js(
        &b,
        "return document.querySelector('#live .dot.on') !== null",
        Duration::from_secs(20),
        "Bob's WebSocket",
    )
    .await;
    wait_js(
        &b,
        "return document.getElementById('streams')?.dataset.loaded === '1' && document.getElementById('tasks').dataset.loaded === '1'",
        Duration::from_secs(20),
        "Bob's streams and tasks",
    )
    .await;
    let rows = b
        .execute(
            "return [document.querySelectorAll('#streams tr').length, document.querySelectorAll('#tasks li').length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows, json!([0, 0]));
    b.goto(&format!("{base}/streams/{stream_id}"))
        .await
        .unwrap();
    let flash = wait_js(
        &b,
        "const f = document.getElementById('flash'); return f.textContent || null",
        Duration::from_secs(20),
        "Bob's not-found message",
    )
    .await;
    assert!(flash.as_str().unwrap().contains("not found"), "{flash}");
    assert_eq!(
        b.execute("return document.getElementById('player')", vec![])
            .await
            .unwrap(),
        Value::Null
    );
    b.goto(&format!("{base}/ui/search?q=saffron"))
        .await
        .unwrap();
    let found = wait_js(
        &b,
        "const r = document.getElementById('results'); return r && r.children.length ? r.textContent : null",
        Duration::from_secs(20),
        "Bob's search",
    )
    .await;
    assert_eq!(found, json!("Nothing found."));

    b.close().await.unwrap();
    c.close().await.unwrap();
    app.stop().await;
}

/// Twitch from the profile page: *Connect Twitch* goes through Twitch's consent (the local
/// stand-in) and back to our callback page, the profile shows the account, *Capture chat*
/// turns capture on (no public URL here, so a worker holds an EventSub WebSocket) and the
/// profile shows it capturing; another user's profile shows nothing of it.
#[tokio::test]
async fn twitch_is_connected_and_chat_capture_turned_on_from_the_profile() {
    use gt_auth::token_box::{TWITCH_TOKENS, TokenKey};
    let fake = gt_twitch::fake::FakeTwitch::start().await;
    let broadcaster = format!("3{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000);
    fake.add_user(&broadcaster, "alice_streams");
    fake.approve_as("alice_streams");
    let port = gt_tests::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let twitch = gt_twitch::app::TwitchApp::new(
        fake.config(),
        format!("{base}/twitch/callback"),
        TokenKey::derive(&[9; 32], TWITCH_TOKENS).unwrap(),
        "browser-eventsub-secret".into(),
        None,
    );
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch),
        api_port: Some(port),
        gpu_worker: false,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let driver = Driver::start().await;
    let c = driver.browser("alice-twitch").await;
    c.goto(&format!("{base}/#token={}", app.token(ALICE)))
        .await
        .unwrap();
    css(&c, "nav a[href='/ui/profile']")
        .await
        .click()
        .await
        .unwrap();
    css(&c, "#connect-twitch").await.click().await.unwrap();
    let shown = wait_js(
        &c,
        "const t = document.getElementById('twitch')?.textContent ?? ''; \
         return t.includes('connected as') ? t : null",
        Duration::from_secs(30),
        "the profile showing the connected account",
    )
    .await;
    assert!(shown.as_str().unwrap().contains("alice_streams"), "{shown}");
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/profile"),
        "back on the profile"
    );
    css(&c, "#chat-capture-toggle").await.click().await.unwrap();
    // The profile reads the state when drawn; reopen it until the run reports capturing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = wait_js(
            &c,
            "return document.getElementById('chat-capture')?.dataset.state ?? null",
            Duration::from_secs(20),
            "the chat capture state",
        )
        .await;
        if state == "capturing" {
            break;
        }
        assert!(Instant::now() < deadline, "capture never started: {state}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.refresh().await.unwrap();
    }
    let websocket_subs = fake
        .subscriptions()
        .iter()
        .filter(|s| s["status"] == "enabled" && s["transport"]["method"] == "websocket")
        .count();
    assert_eq!(
        websocket_subs,
        gt_twitch::eventsub::CHAT_CAPTURE_SUBSCRIPTIONS.len()
    );
    screenshot(&c, "profile-twitch.png").await;

    let b = driver.browser("bob-twitch").await;
    b.goto(&format!("{base}/#token={}", app.token(BOB)))
        .await
        .unwrap();
    css(&b, "nav a[href='/ui/profile']")
        .await
        .click()
        .await
        .unwrap();
    let bob = wait_js(
        &b,
        "const t = document.getElementById('twitch')?.textContent ?? ''; \
         return t.includes('Twitch: ') && !t.includes('…') ? t : null",
        Duration::from_secs(20),
        "Bob's Twitch line",
    )
    .await;
    assert!(bob.as_str().unwrap().contains("not connected"), "{bob}");
    app.stop().await;
}

/// A Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Pixels of a PNG screenshot as RGBA rows.
fn rgba(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        info.color_type,
        png::ColorType::Rgba,
        "the screenshot keeps its alpha channel"
    );
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// `mm:ss` or `hh:mm:ss` in seconds.
fn clock(text: &str) -> f64 {
    text.split(':')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("a clock, got {text:?}"))
        })
        .fold(0.0, |acc, part| acc * 60.0 + part)
}

/// The OBS page of a countdown, served by its own API process: the right time, transparent
/// outside what it draws, a dashboard click reaching it, and counting on through a restart of
/// that API process (then catching up with the state again).
#[tokio::test]
async fn an_obs_countdown_page_follows_the_dashboard_and_outlives_an_api_restart() {
    let port = gt_tests::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = TestApp::start_with(AppOptions {
        api_port: Some(port),
        gpu_worker: false,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let (s, widget) = app
        .post(
            ALICE,
            "/records/stream_widgets",
            json!({"title": "Starting soon", "type": "countdown", "showOnDashboard": true,
                   "config": {"duration": 600, "width": 640, "height": 200, "fontSize": 5,
                              "textColor": "rgb(255, 0, 0)", "title": "Starting soon"}}),
        )
        .await;
    assert_eq!(s, 201, "{widget}");
    let id = widget["id"].as_str().unwrap().to_string();
    let token = widget["access_token"].as_str().unwrap().to_string();

    // The page OBS loads, from a second API process that the test restarts.
    let obs_port = gt_tests::free_port();
    let spawn_obs_api = || app.api_process(obs_port).spawn().unwrap();
    let mut obs_api = spawn_obs_api();
    let driver = Driver::start().await;
    let obs = driver.browser("obs").await;
    // Like OBS's browser source: nothing painted behind the page.
    obs.issue_cmd(Cdp {
        cmd: "Emulation.setDefaultBackgroundColorOverride",
        params: json!({"color": {"r": 0, "g": 0, "b": 0, "a": 0}}),
    })
    .await
    .unwrap();
    let page = format!("http://127.0.0.1:{obs_port}/widgets/{id}?token={token}&type=countdown");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(&page)
        .await
        .is_ok_and(|r| r.status().as_u16() == 200)
    {
        assert!(
            Instant::now() < deadline,
            "the second API never served the page"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    obs.goto(&page).await.unwrap();
    let shown = wait_js(
        &obs,
        "return window.__gtWidget?.connected && document.querySelector('[data-role=time]')?.textContent",
        Duration::from_secs(30),
        "the countdown on the OBS page",
    )
    .await;
    assert_eq!(shown, "10:00", "not started: the full duration");
    let look = obs
        .execute(
            "const w = document.getElementById('widget').getBoundingClientRect(); \
             const t = getComputedStyle(document.querySelector('[data-role=time]')); \
             return [w.width, w.height, getComputedStyle(document.body).backgroundColor, \
                     t.color, getComputedStyle(document.getElementById('widget')).fontSize]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(look[0], 640.0, "canvas width from the config: {look}");
    assert_eq!(look[1], 200.0, "canvas height from the config: {look}");
    assert_eq!(look[2], "rgba(0, 0, 0, 0)", "transparent body: {look}");
    assert_eq!(
        look[3], "rgb(255, 0, 0)",
        "text colour from the config: {look}"
    );
    assert_eq!(look[4], "80px", "fontSize 5 rem: {look}");
    // Pixels: nothing painted outside the canvas (alpha 0) and the red text is opaque.
    let (w, h, px) = rgba(&obs.screenshot().await.unwrap());
    let alpha = |x: u32, y: u32| px[((y * w + x) * 4 + 3) as usize];
    assert_eq!(alpha(w - 5, h - 5), 0, "transparent outside the widget");
    assert_eq!(alpha(700, 300), 0, "transparent outside the widget");
    let opaque_red = px
        .chunks(4)
        .filter(|p| p[3] == 255 && p[0] > 200 && p[1] < 60 && p[2] < 60)
        .count();
    assert!(
        opaque_red > 200,
        "the red digits are drawn ({opaque_red} px)"
    );
    screenshot(&obs, "obs-countdown.png").await;

    // The streamer's dashboard, on the main API.
    let dash = driver.browser("dash").await;
    dash.goto(&format!("{base}/#token={}", app.token(ALICE)))
        .await
        .unwrap();
    css(&dash, "nav a[href='/ui/widgets']")
        .await
        .click()
        .await
        .unwrap();
    let start = format!("[data-widget-id='{id}'] [data-action=start]");
    css(&dash, &start).await;
    wait_js(
        &dash,
        &format!("return document.querySelector(\"[data-widget-id='{id}'] [data-role=widget-state]\")?.textContent || null"),
        Duration::from_secs(20),
        "the card's live state",
    )
    .await;
    let updates_before = obs
        .execute("return window.__gtWidget.updates", vec![])
        .await
        .unwrap();
    let clicked_at = dash
        .execute(
            &format!("document.querySelector(\"{start}\").click(); return Date.now()"),
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let drawn_at = wait_js(
        &obs,
        &format!(
            "const g = window.__gtWidget; return g.updates > {updates_before} && \
             document.getElementById('widget').dataset.phase === 'running' && \
             performance.timeOrigin + g.lastUpdateAt"
        ),
        Duration::from_secs(10),
        "the OBS page running after the dashboard's click",
    )
    .await
    .as_f64()
    .unwrap();
    eprintln!(
        "dashboard click to OBS page redraw: {:.0} ms",
        drawn_at - clicked_at
    );

    // What the page shows follows the stored state.
    async fn shown_vs_stored(app: &TestApp, obs: &Client, id: &str) -> (f64, f64) {
        let (_, record) = app
            .get(ALICE, &format!("/records/stream_widgets/{id}"))
            .await;
        let state = &record["state"];
        let tick =
            chrono::DateTime::parse_from_rfc3339(state["last_tick_timestamp"].as_str().unwrap())
                .unwrap();
        let text = obs
            .execute(
                "return document.querySelector('[data-role=time]').textContent",
                vec![],
            )
            .await
            .unwrap();
        let elapsed = (chrono::Utc::now() - tick.with_timezone(&chrono::Utc)).num_milliseconds()
            as f64
            / 1000.0;
        (
            clock(text.as_str().unwrap()),
            state["duration_left"].as_f64().unwrap() - elapsed,
        )
    }
    let (shown, expected) = shown_vs_stored(&app, &obs, &id).await;
    assert!(
        (shown - expected).abs() <= 1.5,
        "shows {shown} s, {expected:.1} s are left"
    );

    // The API process serving the page dies: the page keeps counting, then reconnects.
    let _ = obs_api.kill();
    let _ = obs_api.wait();
    wait_js(
        &obs,
        "return document.querySelector('[data-role=status]').dataset.state !== 'connected'",
        Duration::from_secs(15),
        "the page noticing the lost connection",
    )
    .await;
    let before = clock(
        obs.execute(
            "return document.querySelector('[data-role=time]').textContent",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (during, expected) = shown_vs_stored(&app, &obs, &id).await;
    assert!(
        during <= before - 2.0,
        "still counting while disconnected ({before} → {during})"
    );
    assert!(
        (during - expected).abs() <= 1.5,
        "shows {during} s, {expected:.1} s are left"
    );
    let initial_states = obs
        .execute("return window.__gtWidget.initialStates", vec![])
        .await
        .unwrap();
    obs_api = spawn_obs_api();
    wait_js(
        &obs,
        &format!(
            "return window.__gtWidget.connected && window.__gtWidget.initialStates > {initial_states}"
        ),
        Duration::from_secs(40),
        "the page re-subscribed to the restarted API",
    )
    .await;
    let (after, expected) = shown_vs_stored(&app, &obs, &id).await;
    assert!(
        (after - expected).abs() <= 1.5,
        "shows {after} s, {expected:.1} s are left"
    );
    // And it follows the dashboard again.
    css(
        &dash,
        &format!("[data-widget-id='{id}'] [data-action=pause]"),
    )
    .await
    .click()
    .await
    .unwrap();
    wait_js(
        &obs,
        "return document.getElementById('widget').dataset.phase === 'paused'",
        Duration::from_secs(10),
        "the paused countdown on the page",
    )
    .await;
    // Reaching zero switches OBS's scene when the page may (OBS's browser-source API, here a
    // stand-in object with the same method).
    obs.execute(
        "window.obsstudio = {setCurrentScene: (name) => { (window.__scenes ??= []).push(name); }}",
        vec![],
    )
    .await
    .unwrap();
    let (s, b) = app
        .put(
            ALICE,
            &format!("/records/stream_widgets/{id}"),
            json!({"config": {"duration": 600, "width": 640, "height": 200, "fontSize": 5,
                              "textColor": "rgb(255, 0, 0)", "onFinishScene": "Live"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let mut control = gt_tests::websocket(&app, ALICE).await;
    for (action, payload) in [
        ("set_duration", json!({"duration": 1})),
        ("resume", json!({})),
    ] {
        use futures::SinkExt;
        control
            .send(tokio_tungstenite::tungstenite::Message::Text(
                json!({"type": "WIDGET_ACTION", "widgetId": id, "action": action, "payload": payload})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
    }
    let scenes = wait_js(
        &obs,
        "return document.getElementById('widget').dataset.phase === 'finished' && \
         (window.__scenes ?? []).join(',')",
        Duration::from_secs(20),
        "the finished countdown switching the scene",
    )
    .await;
    assert_eq!(scenes, "Live", "switched once");
    let _ = obs_api.kill();
    let _ = obs_api.wait();
    let _ = obs.close().await;
    let _ = dash.close().await;
    app.stop().await;
}
