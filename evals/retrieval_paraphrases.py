"""The paraphrase set of ``toolgym eval retrieval``: queries written for this eval (toolgym's own,
not from BFCL) that share no content word with the tool they need.

Each query was written from the tool's intent and then checked (``tests/evals/
test_evals_retrieval.py``) to use none of the words of the tool's indexed text (its name split into
words, description and parameter texts), stop words aside: BM25 can't find these by overlap, so
this setting measures how well a retriever has learnt what tools *do*.
"""

from __future__ import annotations

__all__ = ["PARAPHRASES"]

#: (query, the name of the one tool it needs)
PARAPHRASES: tuple[tuple[str, str], ...] = (
    ("how likely is it that I roll a six?", "probabilities.calculate_single"),
    ("how did the squad do in yesterday match?", "sport_analysis.last_game_performance"),
    ("what is the farad rating for a pair of metal sheets separated by glass?", "capacitance_calculator.calculate"),
    ("which shrubs keep hillside soil from washing away?", "get_plants_for_slope"),
    ("sum up 17 and 25", "add"),
    ("which sculptures by Rodin could I go view?", "artwork.find"),
    ("what share of 80 is 20?", "percentage"),
    ("how spread out are these exam marks: 60, 75, 90?", "standard_deviation"),
    ("how fast did Tesla turnover expand lately?", "sales_growth.calculate"),
    ("how many litres of emulsion do I need for my bedroom walls?", "calculate_paint_needed"),
    ("tilt the lens upward a bit and pan left", "look"),
    ("how many calories and grams of protein does lasagna have?", "recipe_nutrition_info"),
    ("book me dinner at Nopa tonight at seven", "Restaurants_2_ReserveRestaurant"),
    ("how big is a round pizza of diameter twelve inches?", "geometry.calculate_area_circle"),
    ("is rain expected in Boston tomorrow?", "get_weather_forecast"),
    ("break 360 down into the primes that multiply to it", "number_analysis.prime_factors"),
    ("any discounts or coupon deals on shoes right now?", "get_promotions"),
    ("how wealthy is LeBron James?", "celebrity_net_worth.get"),
    ("copy that open-source project code onto my laptop", "clone_repo"),
    ("how much money did Apple bring in during 2020?", "total_revenue"),
    ("ring at dawn tomorrow so I rise early", "set_alarm"),
    ("work out the slope of 3x^2 + 2x", "calculate_derivative"),
    ("Protestant movements that reshaped Christianity", "religion_history.get_reformations"),
    ("hoops star with the highest tally ever in a year", "sports_data.basketball.most_points_single_season"),
    ("mix the playing pack and deal me five", "cards.shuffle_and_draw"),
    ("highly reviewed raw fish restaurants in Tokyo", "get_best_sushi_places"),
    ("how much space does a ball of 4 cm across occupy?", "calcVolume.sphere"),
    ("how much will a cab cost for a ride downtown?", "calculate_taxi_fare"),
    ("how far is Paris from Berlin in km?", "geo_distance.calculate"),
    ("switch on the front lamps of my automobile", "setHeadlights"),
    ("open a helpdesk request about my broken laptop", "create_ticket"),
    ("how many pages of accounts are registered, in Spanish?", "users_list"),
    ("estimate house prices from my learned linear fit", "regression_model.predict"),
    ("how many shops in Chicago sell Nike sneakers?", "store_count"),
    ("what do past candidates say about the person who will quiz me, John Smith?", "interviewer_review.get"),
    ("how quickly will a car be going after speeding up for a while from standstill?", "kinematics.final_velocity"),
    ("what will my savings grow to at 5% for a decade?", "calculate_compounded_interest"),
    ("how much did Messi score over his whole playing life?", "get_career_stats"),
    ("what does this loop do: for i in range(3): print(i)", "code_explain"),
    ("show me where report.txt mentions 'budget analysis'", "grep"),
)
