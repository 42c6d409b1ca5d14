"""A deterministic, realistic customer CSV for demos, benchmarks and tests.

    python -m customer_pipeline.contract.sample_data --rows 10000 --seed 42 --out files/customers.csv

The same arguments always give the same bytes: everything comes from one seeded
`random.Random`, never from the clock. About 60 % of the data rows are valid USA rows,
20 % valid rows of other countries, and 20 % invalid rows that cycle through every reason
code of the contract (a wrong field count for `malformed_row` included). Some valid rows
exercise the reader too: quoted fields with commas, quotes and line breaks, values with
surrounding whitespace, every spelling of the USA, lower-case states, upper-case emails,
and a few blank lines. The file is UTF-8 with `\\n` line ends and no BOM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Tuple

from customer_pipeline.contract.rules import KNOWN_COLUMNS

DEFAULT_ROWS = 10_000
DEFAULT_SEED = 20_240_229

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Carlos", "Karen", "Wei", "Aisha", "José", "Zoë", "Nguyen",
    "Fatima", "Olga", "Hiroshi", "Priya", "Seán", "Mateo", "Amara", "Liam", "Sofia",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Pérez", "Thompson", "White",
    "O'Brien", "Müller", "Nakamura", "Kowalski", "Okafor", "Singh", "Chen", "Dubois",
)  # fmt: skip
EMAIL_DOMAINS = (
    "example.com", "mail.example.org", "customers.example.net", "example.co.uk",
    "inbox.example.io",
)  # fmt: skip
STREETS = (
    "Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd",
    "Lakeview Rd", "Park Ave", "Sunset Blvd", "Highland Ave", "Church St", "Mill Rd",
)  # fmt: skip
# (city, state, first three zip digits)
US_PLACES = (
    ("New York", "NY", "100"), ("Los Angeles", "CA", "900"), ("Chicago", "IL", "606"),
    ("Houston", "TX", "770"), ("Phoenix", "AZ", "850"), ("Philadelphia", "PA", "191"),
    ("San Antonio", "TX", "782"), ("San Diego", "CA", "921"), ("Dallas", "TX", "752"),
    ("Jacksonville", "FL", "322"), ("Columbus", "OH", "432"), ("Charlotte", "NC", "282"),
    ("Seattle", "WA", "981"), ("Denver", "CO", "802"), ("Washington", "DC", "200"),
    ("Boston", "MA", "021"), ("Nashville", "TN", "372"), ("Portland", "OR", "972"),
    ("Las Vegas", "NV", "891"), ("Detroit", "MI", "482"), ("Atlanta", "GA", "303"),
    ("Minneapolis", "MN", "554"), ("Anchorage", "AK", "995"), ("Honolulu", "HI", "968"),
    ("Burlington", "VT", "054"), ("Cheyenne", "WY", "820"), ("Des Moines", "IA", "503"),
)  # fmt: skip
# Mostly `USA`, sometimes another spelling that rule 6 also turns into `USA`.
USA_SPELLINGS = (
    ("USA", 80), ("US", 5), ("United States", 5), ("u.s.a.", 2), ("U.S.", 2),
    ("united states of america", 2), ("  usa ", 2), ("United   States", 1), ("Usa", 1),
)  # fmt: skip
# (country as written, [(city, region)], postal code pattern: 9 digit, A letter)
OTHER_COUNTRIES: Tuple[Tuple[str, Tuple[Tuple[str, str], ...], str], ...] = (
    ("Canada", (("Toronto", "ON"), ("Montréal", "QC"), ("Vancouver", "BC")), "A9A 9A9"),
    ("United Kingdom", (("London", ""), ("Manchester", ""), ("Edinburgh", "")), "AA9 9AA"),
    ("Germany", (("Berlin", "BE"), ("München", "BY"), ("Hamburg", "HH")), "99999"),
    ("France", (("Paris", ""), ("Lyon", ""), ("Marseille", "")), "99999"),
    ("Mexico", (("Ciudad de México", "CMX"), ("Guadalajara", "JAL")), "99999"),
    ("India", (("Mumbai", "MH"), ("Bengaluru", "KA")), "999999"),
    ("Japan", (("Tokyo", "13"), ("Osaka", "27")), "999-9999"),
    ("Australia", (("Sydney", "NSW"), ("Melbourne", "VIC")), "9999"),
    ("Brazil", (("São Paulo", "SP"), ("Rio de Janeiro", "RJ")), "99999-999"),
    # Near misses of the USA's spellings: other countries as far as rule 6 goes.
    ("US A", (("Springfield", "IL"),), "99999"),
    ("U.S.A", (("Springfield", "MO"),), "99999"),
)  # fmt: skip

_FIRST_SIGNUP = dt.date(2015, 1, 1)
_SIGNUP_DAYS = (dt.date(2024, 12, 31) - _FIRST_SIGNUP).days

Row = Dict[str, str]


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 100_000
        self.invalid_count = 0

    # -- valid rows -------------------------------------------------------------------

    def person(self) -> Row:
        rng = self.rng
        self.next_id += rng.randint(1, 3)
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower().replace("'", "") + str(rng.randint(1, 999))
        email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
        if rng.random() < 0.05:
            email = email.upper()
        signup = _FIRST_SIGNUP + dt.timedelta(days=rng.randint(0, _SIGNUP_DAYS))
        customer_id = str(self.next_id)
        if rng.random() < 0.01:
            customer_id = "00" + customer_id
        row: Row = {
            "customer_id": customer_id,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": "",
            "address": self.street_address(),
            "city": "",
            "state": "",
            "zip_code": "",
            "country": "",
            "signup_date": signup.isoformat(),
        }
        if rng.random() < 0.02:
            row["first_name"] = f"  {first} "
        return row

    def street_address(self) -> str:
        rng = self.rng
        address = f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"
        draw = rng.random()
        if draw < 0.10:
            address += f", Apt {rng.randint(1, 40)}{rng.choice('ABCD')}"
        elif draw < 0.12:
            address += f"\nSuite {rng.randint(100, 999)}"
        elif draw < 0.13:
            address += ' (the "blue" house)'
        return address

    def usa_row(self) -> Row:
        rng = self.rng
        row = self.person()
        city, state, zip_prefix = rng.choice(US_PLACES)
        zip_code = zip_prefix + f"{rng.randint(0, 99):02d}"
        if rng.random() < 0.15:
            zip_code += f"-{rng.randint(0, 9999):04d}"
        row.update(
            phone=f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
            city=city,
            state=state.lower() if rng.random() < 0.05 else state,
            zip_code=zip_code,
            country=_weighted(rng, USA_SPELLINGS),
        )
        for optional in ("phone", "address", "city"):
            if rng.random() < 0.03:
                row[optional] = ""
        return row

    def other_country_row(self) -> Row:
        rng = self.rng
        row = self.person()
        country, places, postal_pattern = rng.choice(OTHER_COUNTRIES)
        city, region = rng.choice(places)
        row.update(
            phone=f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            city=city,
            state=region,
            zip_code=_postal_code(rng, postal_pattern),
            country=country,
        )
        return row

    # -- invalid rows -------------------------------------------------------------------

    def invalid_row(self) -> List[str]:
        kind = _INVALID_KINDS[self.invalid_count % len(_INVALID_KINDS)]
        self.invalid_count += 1
        return kind(self)

    def _usa_with(self, **changes: str) -> List[str]:
        row = self.usa_row()
        row.update(changes)
        return _fields(row)

    def wrong_field_count(self) -> List[str]:
        fields = _fields(self.usa_row())
        if self.rng.random() < 0.5:
            return fields[:-1]
        return [*fields, "unexpected"]

    def missing_required(self) -> List[str]:
        column = self.rng.choice(("customer_id", "first_name", "last_name", "email", "country", "signup_date"))
        return self._usa_with(**{column: self.rng.choice(("", " ", "\t"))})

    def bad_customer_id(self) -> List[str]:
        value = self.rng.choice(
            ("A1023", "0", "000", "-17", "12.5", "9223372036854775808", "1 234", "\uff11\uff12\uff13")
        )
        return self._usa_with(customer_id=value)

    def bad_email(self) -> List[str]:
        value = self.rng.choice(
            (
                "john.smith@example",
                "john@@example.com",
                "john smith@example.com",
                "@example.com",
                "john@example..com",
                "john.example.com",
                "john@.example.com",
                "john@example.com.",
            )
        )
        return self._usa_with(email=value)

    def bad_signup_date(self) -> List[str]:
        value = self.rng.choice(
            ("2023-02-29", "2021-13-01", "2021/05/04", "05/04/2021", "2021-4-5", "2021-06-31", "yesterday")
        )
        return self._usa_with(signup_date=value)

    def missing_state(self) -> List[str]:
        return self._usa_with(state="")

    def missing_zip_code(self) -> List[str]:
        return self._usa_with(zip_code="")

    def bad_state(self) -> List[str]:
        return self._usa_with(state=self.rng.choice(("XX", "Calif", "PR", "Texas", "N.Y.")))

    def bad_zip_code(self) -> List[str]:
        return self._usa_with(zip_code=self.rng.choice(("1234", "123456", "12345-678", "ABCDE", "1234O")))

    def several_problems(self) -> List[str]:
        return self._usa_with(email="not-an-email", state="ZZ", zip_code="", signup_date="2024-02-30")

    def bad_other_country(self) -> List[str]:
        # Outside the USA only rules 2 to 5 apply; the empty state and zip are fine.
        row = self.other_country_row()
        row.update(email="someone@localhost", state="", zip_code="")
        return _fields(row)


_INVALID_KINDS: Tuple[Callable[[_Generator], List[str]], ...] = (
    _Generator.wrong_field_count,
    _Generator.missing_required,
    _Generator.bad_customer_id,
    _Generator.bad_email,
    _Generator.bad_signup_date,
    _Generator.missing_state,
    _Generator.missing_zip_code,
    _Generator.bad_state,
    _Generator.bad_zip_code,
    _Generator.several_problems,
    _Generator.bad_other_country,
    # Each missing_* code needs its own turns: six columns share `missing_required`.
    _Generator.missing_required,
    _Generator.missing_required,
    _Generator.missing_required,
)

_BLANK_LINES = ("\n", "   \n", " \t\n", "\t\n")


def generate_lines(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Iterator[str]:
    """The CSV as text lines (a quoted field may hold line breaks), header first."""
    if rows < 0:
        raise ValueError("rows must not be negative")
    generator = _Generator(seed)
    rng = generator.rng
    yield ",".join(KNOWN_COLUMNS) + "\n"
    for _ in range(rows):
        if rng.random() < 0.002:
            yield rng.choice(_BLANK_LINES)
        draw = rng.random()
        if draw < 0.60:
            fields = _fields(generator.usa_row())
        elif draw < 0.80:
            fields = _fields(generator.other_country_row())
        else:
            fields = generator.invalid_row()
        yield ",".join(_quote(value) for value in fields) + "\n"


def write_csv(stream: BinaryIO, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> None:
    for line in generate_lines(rows, seed):
        stream.write(line.encode("utf-8"))


def generate_bytes(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> bytes:
    return "".join(generate_lines(rows, seed)).encode("utf-8")


def _fields(row: Row) -> List[str]:
    return [row[column] for column in KNOWN_COLUMNS]


def _quote(value: str) -> str:
    if any(special in value for special in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _weighted(rng: random.Random, choices: Tuple[Tuple[str, int], ...]) -> str:
    total = sum(weight for _, weight in choices)
    pick = rng.randrange(total)
    for value, weight in choices:
        pick -= weight
        if pick < 0:
            return value
    raise AssertionError("unreachable")


def _postal_code(rng: random.Random, pattern: str) -> str:
    letters = "ABCEGHJKLMNPRSTVWXYZ"
    return "".join(
        str(rng.randint(0, 9)) if char == "9" else rng.choice(letters) if char == "A" else char for char in pattern
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m customer_pipeline.contract.sample_data",
        description="Write a deterministic sample customer CSV.",
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="data rows (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    parser.add_argument("--out", default="-", help="output file, '-' for stdout (default)")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must not be negative")
    if args.out == "-":
        write_csv(sys.stdout.buffer, args.rows, args.seed)
        sys.stdout.buffer.flush()
        return 0
    directory = os.path.dirname(args.out)
    if directory:
        os.makedirs(directory, exist_ok=True)
    # Write beside the target and rename, so a reader never sees half a file.
    partial = args.out + ".partial"
    with open(partial, "wb") as stream:
        write_csv(stream, args.rows, args.seed)
    os.replace(partial, args.out)
    print(f"wrote {args.rows} data rows to {args.out} (seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
