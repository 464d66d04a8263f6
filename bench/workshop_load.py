"""A room of students on one server: how fast the Playground answers while many move magnets.

Starts ``streamlit run app.py`` (the repo's config, a free localhost port) and connects
simulated students over Streamlit's websocket protocol (``tests/streamlit_client.py``: the
messages a browser sends and receives, without drawing them). For each room size:

1. everyone opens the Playground at the same moment (the start of an exercise);
2. ``--seconds`` of steady work: each student moves a random magnet slider, waits for the
   answer, then thinks for a random time (exponential, mean ``--think`` s) before the next;
3. ``--bursts`` times, everyone moves a slider at the same instant ("now all move Q1").

With ``--evaluators K``, K more sessions open the Compare page during step 2, run the
tutorial's agents side by side and evaluate them on 200, 199, ... seeds (the heaviest thing
a student can ask for); the table then also gives when their evaluations finished. With
``--explorers K``, K more sessions on Compare press "New seed" every ``--explore-think`` s
on average (the agents run on a new beam and its screens are built anew). With
``--designers K``, K more sessions on the Reward designer move one of Reward A's weight
sliders to a random value every ``--design-think`` s on average (its landscape, formula,
value and the cut through both rewards are computed anew). With ``--watchers K``, one more
session launches the tutorial's training on the Train page (it runs as its own process, on
the other core) and K sessions watch it: each refreshes the page's job list and history
charts as a browser does (the run's folder is a temporary one, and the training is stopped
at the end).

A move is timed from sending it until the server's ``script_finished`` (new screen, table
and rewards all arrived); the browser's drawing adds ~100 ms (``playground_latency.py``).
Each move is checked to bring a new screen and table. The server's CPU time comes from
``/proc``; the clients run in this process on the same 2 cores, so their CPU share is
printed too. A room of one is the peer (a student alone, moving every ~0.5 s):
``*_vs_1`` are ratios to it. ``--servers 2`` starts two servers and shares the students
between them round-robin (what a host can do by hand: a second ``make run`` on another
port with its own ``ARES_RUNS_DIR``).

    python bench/workshop_load.py [--students 1 10 30 60 100] [--seconds 20] [--think 2] [--bursts 3]
                                  [--servers 1] [--evaluators 0] [--explorers 0] [--explore-think 8]
                                  [--designers 0] [--design-think 4] [--watchers 0]

Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from browser_support import StreamlitServer, streamlit_server  # noqa: E402
from playground_latency import random_moves  # noqa: E402
from streamlit_client import ScriptRun, StudentClient  # noqa: E402

from ui.compare import MAX_EPISODES  # noqa: E402
from ui.train import HISTORY_REFRESH_S, LIVE_REFRESH_S  # noqa: E402

MOVES_PER_STUDENT = 2_000  # more than any run makes
PEER_THINK_S = 0.5  # the room of one: a student alone, moving every ~0.5 s (~40 moves in 20 s)


def servers_cpu_s(servers: list[StreamlitServer]) -> float:
    """User + system CPU seconds so far of the server processes and their live children (the
    Compare page's worker processes), all together (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")

    def tree_cpu(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # A child is listed under the thread that started it (here, a script-run thread).
            tasks = Path(f"/proc/{pid}/task").iterdir()
            children = [c for task in tasks for c in (task / "children").read_text().split()]
        except OSError:  # the process ended meanwhile
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick + sum(tree_cpu(int(c)) for c in children)

    return sum(tree_cpu(server.process.pid) for server in servers)


def percentile_ms(samples_s: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples_s) * 1e3, q)) if samples_s else float("nan")


class Student:
    """One simulated student: a session, and the random moves they will make."""

    def __init__(self, client: StudentClient, seed: int) -> None:
        self.client = client
        self.moves = iter(random_moves(MOVES_PER_STUDENT, seed=seed))

    async def move(self) -> float:
        """Move the next magnet slider; seconds until the answer arrived."""
        label, value = next(self.moves)
        run = await self.client.set_slider(self.client.slider(f"pg.magnet.{label}"), value)
        _check_move(run)
        return run.seconds


def _check_move(run: ScriptRun) -> None:
    if len(run.of_kind("plotly_chart")) != 1 or len(run.of_kind("table")) != 1:
        raise RuntimeError(f"a move did not bring one screen and one table: {[k for k, _, _ in run.elements]}")


async def evaluate_on_compare(client: StudentClient, episodes: int) -> float:
    """Open Compare, run the default agents side by side, then evaluate them on ``episodes`` seeds.

    :return: seconds from pressing "Evaluate" until its table arrived.
    """
    await client.open_page("compare")
    await client.click("Run side by side")
    await client.set_number("Episodes N", episodes)
    run = await client.click("Evaluate on")
    if not run.of_kind("dataframe"):
        raise RuntimeError("an evaluation brought no table")
    return run.seconds


async def after_pauses(
    action: Callable[[], Awaitable[ScriptRun]], until: float, think: float, rng: np.random.Generator
) -> list[float]:
    """Do ``action`` after every pause (exponential, mean ``think`` s) until ``until``.

    :return: seconds from each request until its answer arrived.
    """
    answers = []
    while True:
        await asyncio.sleep(rng.exponential(think))
        if time.perf_counter() >= until:
            return answers
        answers.append((await action()).seconds)


async def explore_on_compare(
    client: StudentClient, until: float, think: float, rng: np.random.Generator
) -> list[float]:
    """Open Compare, run the default agents side by side, then press "New seed" (a new beam:
    the agents run and the screens are built anew) after every pause until ``until``.

    :return: seconds from each press until the new episode's page arrived.
    """
    await client.open_page("compare")
    await client.click("Run side by side")

    async def new_seed() -> ScriptRun:
        run = await client.click("New seed")
        if not run.of_kind("plotly_chart"):
            raise RuntimeError("a new seed brought no screens")
        return run

    return await after_pauses(new_seed, until, think, rng)


#: The Reward designer's weight sliders of Reward A, and the values they take (0.25 steps).
DESIGN_SLIDERS = tuple(f"rd.a.w_{name}" for name in ("mu_x", "sigma_x", "mu_y", "sigma_y"))
DESIGN_WEIGHTS = tuple(0.25 * i for i in range(21))


async def design_rewards(
    client: StudentClient, until: float, think: float, rng: np.random.Generator
) -> list[float]:
    """Open the Reward designer, then move one of Reward A's weights to a random value after
    every pause until ``until``.

    :return: seconds from each move until the page's answer arrived.
    """
    await client.open_page("rewards")

    async def move_weight() -> ScriptRun:
        slider = client.slider(DESIGN_SLIDERS[rng.integers(len(DESIGN_SLIDERS))])
        run = await client.set_slider(slider, float(rng.choice(DESIGN_WEIGHTS)))
        if not run.of_kind("plotly_chart"):
            raise RuntimeError("a weight change brought no landscape")
        return run

    return await after_pauses(move_weight, until, think, rng)


async def launch_training(client: StudentClient) -> None:
    """Open the Train page and launch its default config (the tutorial's, 200k steps)."""
    await client.open_page("train")
    run = await client.click("Launch training")
    if not run.of_kind("dataframe"):  # the job list
        raise RuntimeError("the launch brought no job list")


async def watch_training(
    client: StudentClient, opened: ScriptRun, until: float, rng: np.random.Generator
) -> list[float]:
    """On the Train page (``opened``: its first run), refresh the live section until ``until``
    as a browser does: the job list every ``LIVE_REFRESH_S`` s, the history every
    ``HISTORY_REFRESH_S`` s (each timer runs from the end of the previous refresh; one
    request at a time on the session's socket).

    :return: seconds from each refresh request until its answer arrived.
    """
    fragments: dict[str, float] = {}
    for kind, every in (("dataframe", LIVE_REFRESH_S), ("multiselect", HISTORY_REFRESH_S)):  # job list, history
        fragment = client.fragment_of(opened, kind)
        fragments[fragment] = min(every, fragments.get(fragment, every))  # one fragment: the shorter timer
    now = time.perf_counter()
    due = {fragment: now + rng.uniform(0, every) for fragment, every in fragments.items()}  # not in step
    answers = []
    while True:
        fragment = min(due, key=due.get)
        await asyncio.sleep(max(0.0, due[fragment] - time.perf_counter()))
        if time.perf_counter() >= until:
            return answers
        run = await client.rerun_fragment(fragment)
        if not run.elements:
            raise RuntimeError("a refresh brought nothing")
        answers.append(run.seconds)
        due[fragment] = time.perf_counter() + fragments[fragment]


async def room(
    servers: list[StreamlitServer],
    n: int,
    seconds: float,
    think: float,
    bursts: int,
    evaluators: int = 0,
    explorers: int = 0,
    explore_think: float = 8.0,
    designers: int = 0,
    design_think: float = 4.0,
    watchers: int = 0,
) -> dict[str, float]:
    """Figures of one room of ``n`` students, shared round-robin by ``servers``; see the module docstring.

    :param evaluators: sessions more that each evaluate the tutorial's agents on Compare
        (on 200, 199, ... seeds: no two share a cache entry) while the room works.
    :param explorers: sessions more that each press "New seed" on Compare every
        ``explore_think`` s on average (exponential pauses) while the room works.
    :param designers: sessions more that each move a weight on the Reward designer every
        ``design_think`` s on average while the room works.
    :param watchers: sessions more that watch a training on the Train page (launched by
        one more session before the room starts, stopped after it) while the room works.
    """
    rng = np.random.default_rng(n)
    async with contextlib.AsyncExitStack() as stack:
        urls = [servers[i % len(servers)].url for i in range(n)]
        clients = [await stack.enter_async_context(StudentClient.connect(url)) for url in urls]
        heavy = [await stack.enter_async_context(StudentClient.connect(servers[0].url)) for _ in range(evaluators)]
        exploring = [await stack.enter_async_context(StudentClient.connect(servers[0].url)) for _ in range(explorers)]
        designing = [await stack.enter_async_context(StudentClient.connect(servers[0].url)) for _ in range(designers)]
        watching = [await stack.enter_async_context(StudentClient.connect(servers[0].url)) for _ in range(watchers)]
        launcher = await stack.enter_async_context(StudentClient.connect(servers[0].url)) if watchers else None
        if launcher is not None:
            await launch_training(launcher)
        # Watchers open the page before the steady phase: a room opening a page is the start of the
        # phase's own figures (page_*), here the refreshes alone are measured.
        watch_pages = await asyncio.gather(*(c.open_page("train") for c in watching))
        students = [Student(c, seed=1000 * n + i) for i, c in enumerate(clients)]
        opened = await asyncio.gather(*(c.open_page() for c in clients))
        page_s = [run.seconds for run in opened]

        moves: list[float] = []
        deadline = time.perf_counter() + seconds

        async def work(student: Student) -> None:
            await asyncio.sleep(rng.uniform(0, think))  # students do not start in step
            while time.perf_counter() < deadline:
                moves.append(await student.move())
                # A pause past the deadline would only stretch the phase's wall time.
                await asyncio.sleep(min(rng.exponential(think), max(0.0, deadline - time.perf_counter())))

        cpu0, client0, wall0 = servers_cpu_s(servers), time.process_time(), time.perf_counter()
        *_, evaluations, explored, designed, watched = await asyncio.gather(
            *(work(s) for s in students),
            asyncio.gather(*(evaluate_on_compare(c, MAX_EPISODES - j) for j, c in enumerate(heavy))),
            asyncio.gather(*(explore_on_compare(c, deadline, explore_think, rng) for c in exploring)),
            asyncio.gather(*(design_rewards(c, deadline, design_think, rng) for c in designing)),
            asyncio.gather(
                *(watch_training(c, run, deadline, rng) for c, run in zip(watching, watch_pages, strict=True))
            ),
        )
        new_seeds = [s for answers in explored for s in answers]
        weight_changes = [s for answers in designed for s in answers]
        refreshes = [s for answers in watched for s in answers]
        wall = time.perf_counter() - wall0
        server_cores = (servers_cpu_s(servers) - cpu0) / wall
        client_cores = (time.process_time() - client0) / wall

        burst: list[float] = []
        for _ in range(bursts):
            burst += await asyncio.gather(*(s.move() for s in students))
            await asyncio.sleep(1.0)
        if launcher is not None:
            await launcher.click("Stop")  # the launcher's own job: the training saves and ends
    return {
        "page_p50_ms": percentile_ms(page_s, 50),
        "page_max_ms": percentile_ms(page_s, 100),
        "move_p50_ms": percentile_ms(moves, 50),
        "move_p95_ms": percentile_ms(moves, 95),
        "move_max_ms": percentile_ms(moves, 100),
        "moves_per_s": len(moves) / wall,
        "burst_p50_ms": percentile_ms(burst, 50),
        "burst_max_ms": percentile_ms(burst, 100),
        "server_cores": server_cores,
        "client_cores": client_cores,
        **({"evaluation_first_s": min(evaluations), "evaluation_last_s": max(evaluations)} if evaluations else {}),
        **(
            {"new_seeds": len(new_seeds), "new_seed_p50_ms": percentile_ms(new_seeds, 50),
             "new_seed_p95_ms": percentile_ms(new_seeds, 95)}
            if explorers else {}
        ),
        **(
            {"weight_changes": len(weight_changes), "weight_change_p50_ms": percentile_ms(weight_changes, 50),
             "weight_change_p95_ms": percentile_ms(weight_changes, 95)}
            if designers else {}
        ),
        **(
            {"refreshes": len(refreshes), "refresh_p50_ms": percentile_ms(refreshes, 50),
             "refresh_p95_ms": percentile_ms(refreshes, 95)}
            if watchers else {}
        ),
    }  # fmt: skip


async def run_rooms(servers: list[StreamlitServer], args: argparse.Namespace) -> dict[int, dict[str, float]]:
    for server in servers:
        async with StudentClient.connect(server.url) as warm:  # imports and caches: not a student's wait
            await warm.open_page()
    rooms = {}
    for n in args.students:
        think = PEER_THINK_S if n == 1 else args.think
        heavy = {"evaluators": args.evaluators, "explorers": args.explorers, "designers": args.designers,
                 "watchers": args.watchers}  # fmt: skip
        rooms[n] = await room(
            servers, n, args.seconds, think, args.bursts,
            explore_think=args.explore_think, design_think=args.design_think, **(heavy if n > 1 else {}),
        )  # fmt: skip
    return rooms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 10, 30, 60, 100], help="room sizes")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady phase per room")
    parser.add_argument("--think", type=float, default=2.0, help="mean pause between a student's moves, s")
    parser.add_argument("--bursts", type=int, default=3, help="moves by everyone at the same instant")
    parser.add_argument("--servers", type=int, default=1, help="app servers, students shared round-robin")
    parser.add_argument(
        "--evaluators", type=int, default=0, help="sessions evaluating agents on Compare meanwhile (first server)"
    )
    parser.add_argument(
        "--explorers", type=int, default=0, help="sessions pressing 'New seed' on Compare meanwhile (first server)"
    )
    parser.add_argument("--explore-think", type=float, default=8.0, help="mean pause between their presses, s")
    parser.add_argument(
        "--designers", type=int, default=0, help="sessions moving weights on the Reward designer (first server)"
    )
    parser.add_argument("--design-think", type=float, default=4.0, help="mean pause between their moves, s")
    parser.add_argument(
        "--watchers", type=int, default=0, help="sessions watching a training on the Train page (first server)"
    )
    args = parser.parse_args()
    if 1 not in args.students:
        args.students = [1, *args.students]  # the peer of every ratio

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as stack:
        os.environ["ARES_RUNS_DIR"] = str(Path(logs) / "runs")  # a launched training's files go here
        servers = [stack.enter_context(streamlit_server(Path(logs))) for _ in range(args.servers)]
        rooms = asyncio.run(run_rooms(servers, args))

    print(f"Workshop load: Playground slider moves, {os.cpu_count()} CPUs, load {load:.2f} before, "
          f"{args.servers} server(s), think {args.think:g} s, {args.seconds:g} s per room")  # fmt: skip
    print(f"{'students':>8} {'open p50/max ms':>16} {'move p50/p95/max ms':>22} {'moves/s':>8} "
          f"{'burst p50/max ms':>17} {'server cores':>13} {'client cores':>13}")  # fmt: skip
    figures: dict[str, float] = {
        "cpu_load_1min": load, "servers": args.servers, "think_s": args.think, "seconds_per_room": args.seconds,
    }  # fmt: skip
    one = rooms[1]
    for n, r in rooms.items():
        opened = f"{r['page_p50_ms']:.0f} / {r['page_max_ms']:.0f}"
        moved = f"{r['move_p50_ms']:.0f} / {r['move_p95_ms']:.0f} / {r['move_max_ms']:.0f}"
        burst = f"{r['burst_p50_ms']:.0f} / {r['burst_max_ms']:.0f}"
        print(f"{n:>8} {opened:>16} {moved:>22} {r['moves_per_s']:>8.1f} {burst:>17} "
              f"{r['server_cores']:>13.2f} {r['client_cores']:>13.2f}")  # fmt: skip
        figures |= {f"room{n}_{key}": round(value, 3) for key, value in r.items()}
        figures[f"room{n}_move_p95_vs_1"] = round(r["move_p95_ms"] / one["move_p95_ms"], 2)
    for n, r in rooms.items():
        if "evaluation_first_s" in r:
            print(f"room of {n}: {args.evaluators} evaluations on Compare meanwhile, the first finished after "
                  f"{r['evaluation_first_s']:.1f} s, the last after {r['evaluation_last_s']:.1f} s")  # fmt: skip
        if "new_seeds" in r:
            print(f"room of {n}: {args.explorers} sessions pressed 'New seed' on Compare {r['new_seeds']} times, "
                  f"answered in {r['new_seed_p50_ms']:.0f} ms at the median, "
                  f"{r['new_seed_p95_ms']:.0f} ms at p95")  # fmt: skip
        if "weight_changes" in r:
            print(f"room of {n}: {args.designers} sessions moved a weight on the Reward designer {r['weight_changes']} "
                  f"times, answered in {r['weight_change_p50_ms']:.0f} ms at the median, "
                  f"{r['weight_change_p95_ms']:.0f} ms at p95")  # fmt: skip
        if "refreshes" in r:
            print(f"room of {n}: {args.watchers} sessions watched a training on the Train page, {r['refreshes']} "
                  f"refreshes answered in {r['refresh_p50_ms']:.0f} ms at the median, "
                  f"{r['refresh_p95_ms']:.0f} ms at p95")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
