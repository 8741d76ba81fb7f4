"""Word lists the sandbox data model draws names, titles and descriptions from.

Kept apart from `model.py` so the generation logic stays readable. The lists deliberately mix
accents, apostrophes, CJK and multi-word names: a tap that only ever saw ASCII would not be tested.
Every list is a tuple so its order (and therefore every generated value) never changes by accident;
appending is fine, reordering changes the demo data.
"""

# Letters that look like ASCII (dotless i, en dash) are the point: real names, real titles.
# ruff: noqa: RUF001

from __future__ import annotations

# (display name, e-mail slug) pairs. Slugs keep accents (as real portals do) but drop spaces and
# apostrophes; CJK names carry a romanized slug.
WESTERN_FIRST: tuple[tuple[str, str], ...] = (
    ("María", "maría"),
    ("José", "josé"),
    ("Zoë", "zoë"),
    ("François", "françois"),
    ("Jürgen", "jürgen"),
    ("Søren", "søren"),
    ("Łukasz", "łukasz"),
    ("Ayşe", "ayşe"),
    ("Chloé", "chloé"),
    ("Inés", "inés"),
    ("Björn", "björn"),
    ("Renée", "renée"),
    ("Anaïs", "anaïs"),
    ("João", "joão"),
    ("Noémie", "noémie"),
    ("Tomáš", "tomáš"),
    ("Zsófia", "zsófia"),
    ("Siobhán", "siobhán"),
    ("Oisín", "oisín"),
    ("Priya", "priya"),
    ("Aarav", "aarav"),
    ("Olga", "olga"),
    ("Mateus", "mateus"),
    ("Emma", "emma"),
    ("Liam", "liam"),
    ("Olivia", "olivia"),
    ("Noah", "noah"),
    ("Amelia", "amelia"),
    ("Lucas", "lucas"),
    ("Sara", "sara"),
    ("Omar", "omar"),
    ("Fatima", "fatima"),
    ("Kwame", "kwame"),
    ("Aisha", "aisha"),
    ("Ngozi", "ngozi"),
    ("Dmitri", "dmitri"),
    ("Mary Ann", "maryann"),
    ("Jean-Luc", "jean-luc"),
    ("Ana Lucía", "analucía"),
    ("Ethan", "ethan"),
)
WESTERN_LAST: tuple[tuple[str, str], ...] = (
    ("García", "garcía"),
    ("Müller", "müller"),
    ("Dubois", "dubois"),
    ("Kowalski", "kowalski"),
    ("Rossi", "rossi"),
    ("Smith", "smith"),
    ("O'Brien", "obrien"),
    ("Johansson", "johansson"),
    ("Papadopoulos", "papadopoulos"),
    ("Silva", "silva"),
    ("Fernández", "fernández"),
    ("Schröder", "schröder"),
    ("Lefèvre", "lefèvre"),
    ("Novák", "novák"),
    ("Yılmaz", "yılmaz"),
    ("Patel", "patel"),
    ("Okafor", "okafor"),
    ("Ivanova", "ivanova"),
    ("Haddad", "haddad"),
    ("Andersson", "andersson"),
    ("Jensen", "jensen"),
    ("Moreau", "moreau"),
    ("Costa", "costa"),
    ("Martínez", "martínez"),
    ("van der Berg", "vanderberg"),
    ("Lindqvist", "lindqvist"),
    ("Nguyễn", "nguyễn"),
    ("Brown", "brown"),
    ("Wilson", "wilson"),
    ("Mensah", "mensah"),
    ("Kaur", "kaur"),
    ("Dvořák", "dvořák"),
    ("Núñez", "núñez"),
    ("Øvergaard", "øvergaard"),
    ("Sánchez-Vidal", "sánchez-vidal"),
    ("Taylor", "taylor"),
)
JAPANESE_FIRST: tuple[tuple[str, str], ...] = (
    ("太郎", "taro"),
    ("花子", "hanako"),
    ("健", "ken"),
    ("由美", "yumi"),
    ("翔太", "shota"),
    ("さくら", "sakura"),
)
JAPANESE_LAST: tuple[tuple[str, str], ...] = (
    ("山田", "yamada"),
    ("佐藤", "sato"),
    ("鈴木", "suzuki"),
    ("高橋", "takahashi"),
    ("田中", "tanaka"),
    ("伊藤", "ito"),
)
CHINESE_FIRST: tuple[tuple[str, str], ...] = (
    ("伟", "wei"),
    ("娜", "na"),
    ("静", "jing"),
    ("磊", "lei"),
    ("敏", "min"),
    ("强", "qiang"),
)
CHINESE_LAST: tuple[tuple[str, str], ...] = (
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
)
KOREAN_FIRST: tuple[tuple[str, str], ...] = (
    ("민준", "minjun"),
    ("서연", "seoyeon"),
    ("지우", "jiwoo"),
    ("하은", "haeun"),
)
KOREAN_LAST: tuple[tuple[str, str], ...] = (
    ("김", "kim"),
    ("이", "lee"),
    ("박", "park"),
    ("최", "choi"),
)
NAME_POOLS: tuple[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]], ...] = (
    (WESTERN_FIRST, WESTERN_LAST),
    (JAPANESE_FIRST, JAPANESE_LAST),
    (CHINESE_FIRST, CHINESE_LAST),
    (KOREAN_FIRST, KOREAN_LAST),
)
EMAIL_TAGS: tuple[str, ...] = ("+ops", "+udemy", "+training", "+lms", "+eu")
EMAIL_DOMAIN = "example.com"

# Category -> subcategory -> topics. Titles are built from topics, so the catalog reads like a
# real corporate library.
CATALOG: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    (
        "Development",
        (
            ("Web Development", ("React", "Django", "Node.js", "TypeScript", "GraphQL")),
            ("Data Science", ("Python for Data Analysis", "Machine Learning", "pandas", "SQL")),
            ("Programming Languages", ("Go", "Rust", "Java", "Kotlin")),
            ("Software Testing", ("pytest", "Test Automation", "Playwright")),
        ),
    ),
    (
        "IT & Software",
        (
            (
                "IT Certifications",
                ("AWS Solutions Architect", "Azure Fundamentals", "CompTIA Security+"),
            ),
            (
                "Network & Security",
                ("Zero Trust Networking", "Ethical Hacking", "Incident Response"),
            ),
            ("Operating Systems & Servers", ("Linux Administration", "Kubernetes", "Docker")),
        ),
    ),
    (
        "Leadership",
        (
            ("Management", ("People Management", "Remote Team Leadership", "Delegation")),
            (
                "Leadership Skills",
                ("Emotional Intelligence", "Decision Making", "Change Management"),
            ),
            ("Coaching & Mentoring", ("Coaching Conversations", "Giving Feedback")),
        ),
    ),
    (
        "Business",
        (
            ("Project Management", ("Agile & Scrum", "PMP Exam Prep", "Kanban")),
            ("Business Analytics & Intelligence", ("Power BI", "Tableau", "Data Storytelling")),
            ("Business Strategy", ("OKRs", "Product Strategy")),
        ),
    ),
    (
        "Office Productivity",
        (
            ("Microsoft", ("Excel", "PowerPoint", "Microsoft Teams")),
            ("Google", ("Google Sheets", "Google Workspace")),
        ),
    ),
    (
        "Design",
        (
            ("User Experience Design", ("UX Research", "Figma", "Accessibility")),
            ("Graphic Design & Illustration", ("Visual Design Basics", "Adobe Illustrator")),
        ),
    ),
    (
        "Personal Development",
        (
            ("Personal Productivity", ("Time Management", "Deep Work")),
            ("Communication", ("Public Speaking", "Business Writing", "Negotiation")),
        ),
    ),
    (
        "Finance & Accounting",
        (
            ("Compliance", ("GDPR", "Anti-Money Laundering")),
            ("Financial Modeling & Analysis", ("Financial Modeling", "Budgeting & Forecasting")),
        ),
    ),
)
# Custom (organization-made) courses carry a custom category first, and sometimes no subcategory.
CUSTOM_CATEGORIES: tuple[str, ...] = ("Engineering Team", "Onboarding", "Sales Enablement")

# (locale, title template). English dominates, as in most corporate catalogs.
TITLE_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("en_US", "{t}: The Complete Guide"),
    ("en_US", "Mastering {t}"),
    ("en_US", "{t} for Beginners"),
    ("en_US", "Hands-On {t}: Real-World Projects"),
    ("en_US", "{t} Essentials"),
    ("en_US", "Advanced {t}"),
    ("en_GB", "Practical {t} for Teams"),
    ("en_US", "{t} in 30 Days"),
    ("en_US", "The {t} Masterclass"),
    ("es_ES", "{t}: de cero a experto"),
    ("fr_FR", "{t} : le guide pratique"),
    ("de_DE", "{t} – Grundlagen für Einsteiger"),
    ("pt_BR", "{t} na prática"),
    ("ja_JP", "{t} 入門講座"),
)
HEADLINES: tuple[str, ...] = (
    "Learn {t} step by step, with real-world exercises",
    "Everything you need to use {t} confidently at work",
    "From the basics of {t} to advanced techniques — updated for this year",
    "A practical, no-fluff introduction to {t}",
)
LEVELS: tuple[str, ...] = ("Beginner", "Intermediate", "Expert", "All Levels")
INSTRUCTORS: tuple[str, ...] = (
    "Ana Lucía Romero",
    "Kenji Watanabe",
    "Chloé Martin",
    "Rahul Mehta",
    "Nancy Edwards",
    "Joan Serrat",
    "Björn Lindgren",
    "Fatou Diallo",
    "Li Wen",
    "Marcus O'Neill",
    "Dr. Helena Sørensen",
    "Tomás Ibáñez",
    "佐々木 美咲",
    "Grace Adeyemi",
    "Pierre-Yves Lambert",
)
REQUIREMENTS: tuple[str, ...] = (
    "No prior experience is needed",
    "A computer with internet access",
    "Basic familiarity with {t}",
    "Curiosity and a willingness to practise",
    "An hour or two a week",
)
OUTCOMES: tuple[str, ...] = (
    "Understand the core concepts of {t}",
    "Apply {t} to real projects at work",
    "Avoid the most common mistakes with {n}",
    "Explain {n} clearly to your team",
    "Build a portfolio piece using {t}",
)
NOUNS: tuple[str, ...] = (
    "data models",
    "the command line",
    "error handling",
    "configuration",
    "testing",
    "performance",
    "security",
    "automation",
    "deployment",
    "reporting",
    "stakeholders",
    "feedback loops",
    "debugging",
    "naming & structure",
    "edge cases",
    "collaboration",
)
LECTURE_TITLES: tuple[str, ...] = (
    "Introduction to {t}",
    "Setting up your {t} environment",
    "{t} fundamentals",
    "Working with {n}",
    "Best practices for {n}",
    "Common pitfalls with {n}",
    "Case study: {n} in production",
    "Going further with {n}",
    "Recap and next steps",
    "Demo: {n} end to end",
)
NON_VIDEO_TITLES: tuple[str, ...] = (
    "Cheat sheet: {n}",
    "Reading: {n} explained",
    "Exercise files for {n}",
    "Article: why {n} matter",
)
QUIZ_TITLES: tuple[str, ...] = (
    "Quiz: {n}",
    "Knowledge check — {t}",
    "Practice test: {n}",
)
# Path titles by the category of the path's first course, so a path reads like its content.
PATH_TITLES: dict[str, tuple[str, ...]] = {
    "Development": ("Full-Stack Web Developer", "Python 開発者パス", "Data Analyst Path"),
    "IT & Software": (
        "Cloud Engineer Career Path",
        "Sécurité des réseaux : parcours",
        "DevOps Foundations",
    ),
    "Leadership": ("New Manager Essentials", "Liderazgo ágil para equipos", "Führung im Wandel"),
    "Business": ("Agile Project Management", "Analytics for Decision Makers"),
    "Office Productivity": ("Excel Power User", "Onboarding: Your First Week"),
    "Design": ("UX Designer Path", "Design for Non-Designers"),
    "Personal Development": ("Communication for Leaders", "Work Smarter, Not Harder"),
    "Finance & Accounting": ("Finance for Non-Finance Managers", "Compliance Essentials"),
}
PATH_SECTION_TITLES: tuple[str, ...] = (
    "Getting started",
    "Core skills",
    "Going deeper",
    "Capstone",
    "Practice",
    "Wrap-up",
)
PATH_FOLDERS: tuple[str, ...] = (
    "Engineering",
    "Management",
    "Onboarding",
    "Sales Enablement",
    "Data & Analytics",
)
LOCALE_TITLES: dict[str, str] = {
    "en_US": "English (US)",
    "en_GB": "English (UK)",
    "es_ES": "Español (España)",
    "fr_FR": "Français (France)",
    "de_DE": "Deutsch",
    "pt_BR": "Português (Brasil)",
    "ja_JP": "日本語",
}
ACCREDITATION_BODIES: tuple[tuple[str, str], ...] = (
    ("cpe", "NASBA"),
    ("pdu", "Project Management Institute"),
    ("cpd", "CPD Certification Service"),
)
IMAGE_SIZES: tuple[str, ...] = (
    "48x27",
    "50x50",
    "75x75",
    "96x54",
    "100x100",
    "125_H",
    "200_H",
    "240x135",
    "304x171",
    "480x270",
    "750x422",
)
